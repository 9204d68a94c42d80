// Validates AsyncAPI documents with the real AsyncAPI parser, Avro schema parser registered, so every
// message's .avsc reference is resolved and parsed as Avro too. Prints a JSON list, one report per document:
// {"path", "diagnostics": [{severity, code, message, path}], "document": {...what the parser understood...} | null}
// (severity as the parser counts it: 0 error, 1 warning, 2 information, 3 hint).
// The parser (3.6) runs a schema parser's validate() only for AsyncAPI 2 documents; for a 3.x document it
// converts the Avro schema without checking it (an unknown type name passes). So each message's Avro
// payload is also handed to the Avro schema parser's own validate() here, reported as code "avro-schema".
// usage: node asyncapi-validate.mjs DOCUMENT...
import { resolve } from 'node:path';
import { Parser, fromFile } from '@asyncapi/parser';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';

const avro = AvroSchemaParser();
const parser = new Parser();
parser.registerSchemaParser(avro);

async function avroDiagnostics(doc) {
  const found = [];
  const seen = new Set();
  for (const channel of doc.channels().all()) {
    for (const message of channel.messages().all()) {
      const payload = message.json().payload;
      if (!payload || seen.has(payload) || !avro.getMimeTypes().includes(payload.schemaFormat)) continue;
      seen.add(payload);
      const original = payload['x-parser-original-payload'];
      const path = ['channels', channel.id(), 'messages', message.id(), 'payload', 'schema'];
      const problems = original === undefined
        ? [{ message: 'the Avro schema was not parsed', path }]
        : await avro.validate({ data: original, path, schemaFormat: payload.schemaFormat });
      for (const problem of problems) {
        found.push({ severity: 0, code: 'avro-schema', message: problem.message, path: path.join('/') });
      }
    }
  }
  return found;
}

function refs(collection) {
  return collection.all().map((item) => item.id());
}

function understood(doc) {
  if (!doc) return null;
  return {
    version: doc.version(),
    channels: doc.channels().all().map((channel) => ({
      id: channel.id(),
      address: channel.address(),
      partitions: channel.bindings().get('kafka')?.value()?.partitions ?? null,
      messages: channel.messages().all().map((message) => {
        const payload = message.payload();
        const key = message.bindings().get('kafka')?.value()?.key;
        return {
          id: message.id(),
          name: message.name(),
          schemaFormat: message.schemaFormat(),
          payloadType: payload ? payload.type() : null,
          payloadFields: payload ? Object.keys(payload.properties() || {}) : [],
          key: key ? { type: key.type ?? null, description: key.description ?? null } : null,
          correlationId: message.hasCorrelationId() ? message.correlationId().location() : null,
        };
      }),
    })),
    operations: doc.operations().all().map((operation) => {
      const reply = operation.reply();
      return {
        id: operation.id(),
        action: operation.action(),
        channels: refs(operation.channels()),
        messages: refs(operation.messages()),
        reply: reply
          ? { channel: reply.channel() ? reply.channel().id() : null, messages: refs(reply.messages()) }
          : null,
        component: operation.extensions().get('x-component')?.value() ?? null,
      };
    }),
  };
}

const reports = [];
for (const argument of process.argv.slice(2)) {
  const path = resolve(argument);
  const { document, diagnostics } = await fromFile(parser, path).parse();
  reports.push({
    path,
    diagnostics: diagnostics.map((d) => ({
      severity: d.severity, code: String(d.code), message: d.message, path: (d.path || []).join('/'),
    })).concat(document ? await avroDiagnostics(document) : []),
    document: understood(document),
  });
}
process.stdout.write(JSON.stringify(reports));
