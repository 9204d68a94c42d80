// Parses Mermaid diagrams with the real Mermaid library and prints what it understood, so a test can
// check the structure rather than the source text.
// stdin: JSON [{"name": ..., "source": ...}]; stdout: JSON [{"name", "ok", "error", "type", "nodes", "edges"}]
// (nodes and edges for flowcharts only: [{id, text, shape}], [{source, target, text, stroke}]; text is the
// label as a reader sees it: entity codes decoded, each <br> a newline).
import { JSDOM } from 'jsdom';

// Mermaid sanitises labels with DOMPurify, which needs a window; jsdom is enough to parse (not to lay out).
const dom = new JSDOM('<!doctype html><html><body></body></html>', { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;

const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, logLevel: 'fatal' });

function text(value) {
  return typeof value === 'string' ? value : value === undefined || value === null ? '' : String(value);
}

// Mermaid keeps entity codes (#quot;, #35;) as placeholder characters until it draws; this is its own
// decodeEntities step, then the browser's (here jsdom's) HTML entity decoding.
const scratch = document.createElement('textarea');
function label(value) {
  const html = text(value).replace(/\uFB02\u00B0\u00B0/g, '&#').replace(/\uFB02\u00B0/g, '&').replace(/\u00B6\u00DF/g, ';');
  scratch.innerHTML = html.replace(/<br\s*\/?>/gi, '\n');
  return scratch.value;
}

async function parseOne({ name, source }) {
  try {
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(source);
    const result = { name, ok: true, error: null, type: diagram.type, nodes: null, edges: null };
    const db = diagram.db;
    if (typeof db.getVertices === 'function' && typeof db.getEdges === 'function') {
      result.nodes = [...db.getVertices().values()].map((v) => ({ id: v.id, text: label(v.text), shape: text(v.type) }));
      result.edges = db.getEdges().map((e) => ({ source: e.start, target: e.end, text: label(e.text), stroke: text(e.stroke) }));
    }
    return result;
  } catch (error) {
    return { name, ok: false, error: text(error && error.message ? error.message : error), type: null, nodes: null, edges: null };
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const diagrams = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const results = [];
for (const diagram of diagrams) results.push(await parseOne(diagram));
process.stdout.write(JSON.stringify(results));
