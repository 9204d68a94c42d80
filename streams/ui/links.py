"""From an anomaly to the alert it fires and to the runbook section that says what to do.

The alert rules file is the source: a rule whose expression counts ``opengym_anomalies_total`` with a
``kind`` matcher fires for those kinds. The runbook is Markdown with one ``## <AlertName>`` section per
alert; the UI serves it as a page with the same anchors GitHub gives those headings.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

_RULE = re.compile(r"-\s*alert:\s*(\w+)\s*\n\s*expr:\s*(\|?)(.*?)(?=\n\s*(?:for|labels|annotations):)", re.S)
_KIND = re.compile(r'kind\s*(=~|=)\s*"([^"]*)"')


def alerts_by_kind(rules_file: Path | None, metric: str = "opengym_anomalies_total") -> dict[str, str]:
    """Anomaly kind -> the alert rule that fires on it (first rule wins)."""
    if rules_file is None or not Path(rules_file).exists():
        return {}
    found: dict[str, str] = {}
    for name, _, expr in _RULE.findall(Path(rules_file).read_text()):
        if metric not in expr:
            continue
        for op, value in _KIND.findall(expr):
            for kind in (value.split("|") if op == "=~" else [value]):
                found.setdefault(kind, name)
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def render_markdown(text: str) -> str:
    """Just enough Markdown for a runbook: headings with anchors, lists, code, paragraphs."""
    out: list[str] = []
    in_list = in_code = False
    para: list[str] = []

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        s = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", s)
        return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', s)

    def flush() -> None:
        nonlocal in_list
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in text.splitlines():
        if line.startswith("```"):
            flush()
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            out.append(html.escape(line))
            continue
        heading = re.match(r"^(#{1,4})\s+(.*)$", line)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f'<h{level} id="{anchor(heading.group(2))}">{inline(heading.group(2))}</h{level}>')
        elif re.match(r"^\s*[-*]\s+", line):
            if para:
                out.append(f"<p>{inline(' '.join(para))}</p>")
                para.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            item = re.sub(r"^\s*[-*]\s+", "", line)
            out.append(f"<li>{inline(item)}</li>")
        elif not line.strip():
            flush()
        elif in_list and line.startswith("  "):
            out[-1] = out[-1][:-5] + " " + inline(line.strip()) + "</li>"
        else:
            para.append(line.strip())
    flush()
    return "\n".join(out)
