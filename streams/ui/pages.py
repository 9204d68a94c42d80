"""The HTML of the four pages, rendered on the server from the data in :mod:`streams.ui.model`.

No templates engine and no front-end build: small functions that escape every value they print. The
part of a page inside ``<main id="live">`` is what ``ui.js`` refreshes in place.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape
from typing import Any, Iterable
from urllib.parse import quote, urlencode

KINDS = ("NESTED_TIMEOUT", "LATE_REPLY", "REPLY_WITHOUT_REQUEST", "DOWNSTREAM_NOT_STARTED",
         "DOWNSTREAM_NOT_COMPLETED", "CHAIN_STALLED")


def at(ms: int | None, with_date: bool = False) -> str:
    if ms is None:
        return "-"
    fmt = "%Y-%m-%d %H:%M:%S.%f" if with_date else "%H:%M:%S.%f"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime(fmt)[:-3]


def span(ms: float | None) -> str:
    if ms is None:
        return "-"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    if ms < 1000:
        return f"{sign}{ms:.0f} ms"
    if ms < 120_000:
        return f"{sign}{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{sign}{ms / 60_000:.1f} min"
    return f"{sign}{ms / 3_600_000:.1f} h"


def tx_link(cid: str) -> str:
    return f'<a class="cid" href="/transactions/{quote(cid, safe="")}">{escape(cid)}</a>'


def badge(text: str, cls: str | None = None) -> str:
    return f'<span class="badge {escape(cls or text.lower().replace(" ", "-"))}">{escape(text)}</span>'


class Links:
    """Where an anomaly kind's alert and runbook section are."""

    def __init__(self, alerts: dict[str, str], alertmanager_url: str | None):
        self.alerts = alerts
        self.alertmanager_url = alertmanager_url.rstrip("/") if alertmanager_url else None

    def for_kind(self, kind: str, owner: str | None = None) -> str:
        alert = self.alerts.get(kind)
        if alert is None:
            return ""
        to = f" → {escape(owner)}" if owner else ""
        if self.alertmanager_url:
            matchers = f'{{alertname="{alert}"' + (f',owner="{owner}"' if owner else "") + "}"
            fired = (f'<a class="alert-link" href="{escape(self.alertmanager_url)}/#/alerts?filter='
                     f'{quote(matchers)}">{escape(alert)}{to}</a>')
        else:
            fired = f'<span class="alert-link" title="the alert it fires, routed to the owner">{escape(alert)}{to}</span>'
        return f'{fired} <a class="runbook-link" href="/runbook#{alert.lower()}">runbook</a>'



def layout(title: str, body: str, *, active: str, live: bool = True, head: str = "", note: str = "") -> str:
    nav = "".join(
        f'<a href="{href}"{" class=active" if key == active else ""}>{label}</a>'
        for key, href, label in (("overview", "/", "Overview"), ("transactions", "/transactions", "Transactions"),
                                 ("dead-letters", "/dead-letters", "Dead letters"), ("runbook", "/runbook", "Runbook")))
    refresh = ' data-refresh="3"' if live else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} · OpenGym observer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/ui.css">{head}
<script src="/static/ui.js" defer></script></head>
<body{refresh}><header><strong>OpenGym observer</strong><nav>{nav}</nav>
<span id="live-status">{"live" if live else ""}</span></header>
<main id="live">{body}</main>
<footer>{note}</footer></body></html>"""


# ---- overview ----------------------------------------------------------------------------------

def overview(data: dict[str, Any], diagrams: list[str], links: Links, partitions: str) -> str:
    ov = data
    in_flight = "".join(f"<tr><td>{escape(bt)}</td><td class=num>{n}</td></tr>" for bt, n in ov["in_flight"].items())
    oldest = "".join(
        f"<tr><td>{escape(o['business_transaction'])}</td><td>{escape(o['process'])}</td>"
        f"<td class=num>{span(o['age_s'] * 1000) if o['age_s'] else '-'}</td></tr>"
        for o in ov["oldest_open_s"])
    kinds = ov["anomalies_last_hour"]
    anomaly_rows = "".join(
        f'<tr><td><a href="/transactions?{urlencode({"kind": k})}">{badge(k, "kind")}</a></td>'
        f'<td class=num>{kinds.get(k, 0)}</td><td>{links.for_kind(k)}</td></tr>'
        for k in sorted(set(KINDS) | set(kinds), key=lambda k: (-kinds.get(k, 0), k)))
    statuses = " · ".join(f'<a href="/transactions?status={s}">{n} {escape(s)}</a>'
                          for s, n in sorted(ov["by_status"].items()))
    live = f"""<h1>Overview</h1>
<p class=muted>Judged at observer time {at(ov['now'], True)} UTC. {ov['held']} transactions held in state
({statuses or 'none'}).</p>
<div class=grid>
<section><h2>In flight</h2><table><tr><th>business transaction</th><th>open</th></tr>{in_flight}</table></section>
<section><h2>Oldest open, per process</h2><table><tr><th>business transaction</th><th>process</th><th>age</th></tr>{oldest}</table></section>
<section id=anomalies><h2>Anomalies in the last hour</h2><table><tr><th>kind</th><th>count</th><th>alert / runbook</th></tr>{anomaly_rows}</table></section>
</div>"""
    diagrams_html = "".join(f'<pre class="mermaid">{escape(d)}</pre>' for d in diagrams)
    return live + f'<section class="catalog" data-static><h2>The process catalog</h2>{diagrams_html}</section>'


# ---- transactions ------------------------------------------------------------------------------

def transactions(data: dict[str, Any], f, processes: Iterable[str]) -> str:
    def option(value: str, current: str | None, label: str | None = None) -> str:
        sel = " selected" if value == (current or "") else ""
        return f'<option value="{escape(value)}"{sel}>{escape(label or value or "any")}</option>'

    form = (f'<form class=filters method=get action="/transactions">'
            f'<input type=search name=q placeholder="correlation, booking, member, class or settlement id" '
            f'value="{escape(f.q or "")}" id=q>'
            f'<select name=status>{"".join(option(v, f.status, l) for v, l in (("", "any status"), ("open", "open"), ("anomalous", "anomalous"), ("closed", "recently closed")))}</select>'
            f'<select name=process>{option("", f.process, "any process")}{"".join(option(p, f.process) for p in processes)}</select>'
            f'<select name=kind>{option("", f.kind, "any anomaly")}{"".join(option(k, f.kind) for k in KINDS)}</select>'
            f'<input type=number name=min_age_s min=0 step=1 placeholder="open for at least (s)" value="{escape(str(int(f.min_age_s)) if f.min_age_s is not None else "")}">'
            f'<button type=submit>Filter</button></form>')
    rows = []
    for r in data["rows"]:
        anomalies = " ".join(badge(a["kind"], "kind") for a in r["anomalies"])
        ids = ", ".join(f"{escape(k.removesuffix('_id'))} {escape(v)}" for k, vs in sorted(r["ids"].items())
                        for v in vs if k in ("member_id", "class_id", "settlement_id"))
        rows.append(f"<tr class=row><td>{tx_link(r['correlation_id'])}</td><td>{badge(r['status'])}</td>"
                    f"<td>{escape(', '.join(r['business_transactions']))}</td><td>{at(r['first_fact_at'])}</td>"
                    f"<td class=num>{span(r['age_s'] * 1000) if r['age_s'] is not None else '-'}</td>"
                    f"<td class=num>{r['facts']}</td><td>{anomalies}</td><td class=ids>{ids}</td></tr>")
    shown = (f"{data['shown']} of {data['matched']} matching transactions shown (newest first; raise "
             f"<code>limit</code> for more), out of {data['held']} held in state"
             if data["shown"] < data["matched"] else
             f"{data['matched']} matching transactions, out of {data['held']} held in state")
    table = (f"<table class=list><tr><th>correlation id</th><th>status</th><th>business transaction</th>"
             f"<th>first fact (UTC)</th><th>age</th><th>facts</th><th>anomalies</th><th>ids</th></tr>"
             f"{''.join(rows) or '<tr><td colspan=8 class=muted>none</td></tr>'}</table>")
    return f"<h1>Transactions</h1>{form}<p class=muted id=shown>{shown}.</p>{table}"


# ---- one transaction ---------------------------------------------------------------------------

LEVEL = {"orchestration": "ORCHESTRATION", "nested": "NESTED", "downstream": "DOWNSTREAM",
         "choreography": "CHOREOGRAPHY"}


def _expectation(e: dict[str, Any], now: int, links: Links) -> str:
    status = e["status"]
    if status == "met":
        when = f"met after {span(e['met_at'] - e['since'])}"
    elif status == "late":
        when = f"came {span(e['met_at'] - e['deadline'])} after the deadline {at(e['deadline'])}"
    elif status == "overdue":
        when = f"due {at(e['deadline'])}, {span(now - e['deadline'])} ago"
    else:
        when = f"due {at(e['deadline'])}, in {span(e['deadline'] - now)}"
    if status == "met" and e.get("reported"):
        # Dated within the deadline, but read after the observer's clock had passed it: reported then.
        when += "; it arrived after the observer had reported it missing"
    flagged = status in ("late", "overdue") or e.get("reported")
    flag = f" → {badge(e['kind'], 'kind')} {links.for_kind(e['kind'], e['owner'])}" if flagged else ""
    return (f'<li class="expectation {status}">{badge(status)} {escape(e["expected"])} '
            f'<span class=muted>({when})</span>{flag}</li>')


def _process(p: dict[str, Any], now: int, links: Links) -> str:
    took = (f", took {span(p['ended_at'] - p['started_at'])}"
            if p["ended_at"] is not None and p["started_at"] is not None else "")
    outcome = f" → {escape(p['outcome'])}" if p["outcome"] else ""
    owner = f"owner {escape(p['owner'])}" if p["owner"] else "no owner"
    exps = "".join(_expectation(e, now, links) for e in p["expectations"])
    return (f'<li class="process {p["level"]} {p["status"].replace(" ", "-")}" data-process="{escape(p["process"])}">'
            f'<span class=level>{LEVEL[p["level"]]}</span> <strong>{escape(p["process"])}</strong> '
            f'<span class=muted>({owner})</span> {badge(p["status"])}{outcome} '
            f'<span class=muted>[started {at(p["started_at"])}{took}]</span>'
            f'{"<ul>" + exps + "</ul>" if exps else ""}</li>')


def transaction(t: dict[str, Any], letters: list[dict[str, Any]], published: list[Any], links: Links) -> str:
    now = t["now"]
    by_bt: dict[str, list[dict[str, Any]]] = {}
    for p in t["processes"]:
        by_bt.setdefault(p["business_transaction"], []).append(p)
    tree = []
    for bt, procs in by_bt.items():
        items = []
        terminal = None
        for p in procs:
            if terminal is not None and p["level"] != "nested":
                items.append(terminal)  # after the orchestration's nested pairs, before what it triggers
                terminal = None
            items.append(_process(p, now, links))
            if p["level"] == "orchestration":
                terminal = (f'<li class="process terminal"><span class=level>TERMINAL</span> '
                            f'{escape(p["outcome"] or "not yet")}{" at " + at(p["ended_at"]) if p["ended_at"] else ""}</li>')
        if terminal is not None:
            items.append(terminal)
        tree.append(f"<section class=tree><h3>{escape(bt)}</h3><ul>{''.join(items)}</ul></section>")
    facts = "".join(
        f"<tr><td>{at(f['occurred_at'])}</td><td><strong>{escape(f['type'])}</strong></td>"
        f"<td>{escape(f['topic'] or '-')}</td><td class=num>{'' if f['partition'] is None else f['partition']}</td>"
        f"<td class=num>{'' if f['offset'] is None else f['offset']}</td><td class=id>{escape(f['event_id'])}</td>"
        f"<td class=id>{escape(f['causation_id'] or '-')}</td></tr>" for f in t["facts"])
    detected = {(a.kind.value, a.process): a for a in published}
    anomalies = "".join(
        f"<tr><td>{badge(a['kind'], 'kind')}</td><td>{escape(a['process'])}</td><td>{escape(a['owner'] or '-')}</td>"
        f"<td>{escape(a['expected'] or '')}</td><td>{at(a['deadline'])}</td>"
        f"<td>{at(detected[(a['kind'], a['process'])].detected_at) if (a['kind'], a['process']) in detected else '-'}</td>"
        f"<td>{links.for_kind(a['kind'], a['owner'])}</td></tr>" for a in t["anomalies"])
    dead = "".join(
        f"<tr><td>{at(d['at'])}</td><td>{escape(d['component'])}</td><td>{escape(d['error_kind'])}</td>"
        f"<td>{escape(d['reason'])}</td><td>{'redriven' if d['redriven'] else 'pending'}</td></tr>" for d in letters)
    first = t["timeline"][0]["at"] if t["timeline"] else now
    last = max([x["at"] for x in t["timeline"]] + [now]) if t["timeline"] else now
    width = max(1, last - first)
    timeline = "".join(
        f'<li class="{escape(x["what"].split(" ")[0])}"><span class=track>'
        f'<span class=dot style="left:{(x["at"] - first) * 100 / width:.1f}%"></span></span>'
        f'{at(x["at"])} <span class=muted>+{span(x["at"] - first)}</span> {escape(x["what"])}: '
        f'<strong>{escape(x["label"])}</strong> <span class=muted>{escape(x["detail"])}</span></li>'
        for x in t["timeline"])
    ids = ", ".join(f"{escape(k)} {escape(v)}" for k, vs in sorted(t["ids"].items()) for v in vs)
    return f"""<h1>Transaction <code>{escape(t['correlation_id'])}</code> {badge(t['status'])}</h1>
<p class=muted>Judged at observer time {at(now, True)} UTC{'; closed at ' + at(t['closed_at']) if t['closed_at'] else ''}. {ids}</p>
<h2>Three-level tree</h2>{''.join(tree) or '<p class=muted>no process started</p>'}
<h2>Anomalies</h2><table id=anomalies><tr><th>kind</th><th>process</th><th>owner</th><th>expected</th><th>due</th><th>detected</th><th>alert / runbook</th></tr>{anomalies or '<tr><td colspan=7 class=muted>none</td></tr>'}</table>
<h2>Dead letters</h2><table id=dead-letters><tr><th>at</th><th>component</th><th>kind</th><th>reason</th><th>redrive</th></tr>{dead or '<tr><td colspan=5 class=muted>none</td></tr>'}</table>
<h2>Facts</h2><table id=facts><tr><th>occurred (UTC)</th><th>type</th><th>topic</th><th>partition</th><th>offset</th><th>event id</th><th>caused by</th></tr>{facts}</table>
<h2>Timeline</h2><ol class=timeline>{timeline}</ol>"""


def not_in_state(cid: str, letters: list[dict[str, Any]], published: list[Any], retention_ms: int) -> str:
    found = "".join(f"<li>{badge(a.kind.value, 'kind')} {escape(a.process)}: {escape(a.expected)}</li>" for a in published)
    dead = "".join(f"<li>{escape(d['component'])} {escape(d['error_kind'])}: {escape(d['reason'])}</li>" for d in letters)
    return (f"<h1>Transaction <code>{escape(cid)}</code></h1><p>The observer holds no state for this id: it closed "
            f"more than {span(retention_ms)} ago, or no catalog fact carries it. <code>opengym trace {escape(cid)}</code> "
            f"reads it from the topics.</p>"
            + (f"<h2>Anomalies published</h2><ul>{found}</ul>" if found else "")
            + (f"<h2>Dead letters</h2><ul>{dead}</ul>" if dead else ""))


# ---- dead letters ------------------------------------------------------------------------------

def dead_letters(letters: list[dict[str, Any]], components: Iterable[str], component: str | None,
                 message: str | None, caught_up: bool, pending: dict[str, int] | None = None) -> str:
    pending = pending or {}
    tabs = " ".join(
        f'<a href="/dead-letters{"?component=" + quote(c) if c else ""}"{" class=active" if (c or None) == component else ""}>'
        f'{escape(c or "all")} <span class=muted>({pending.get(c, 0) if c else sum(pending.values())} pending)</span></a>'
        for c in [""] + list(components))
    rows = []
    for d in letters:
        payload = (json.dumps(d["payload"], indent=2) if d["payload"] is not None
                   else f"does not decode: {d['payload_error']}\nbase64: {d['payload_base64'] or '-'}")
        red = d["redriven"]
        state = (f"redriven {at(red['at'])} by {escape(red['by'])} → {escape(red['to']['topic'])}"
                 f"[{red['to']['partition']}]@{red['to']['offset']}" if red else "pending")
        history = f"<br><span class=muted>failed again after {len(d['history'])} redrive(s)</span>" if d["history"] else ""
        box = "" if red else f'<input type=checkbox name=id value="{escape(d["id"])}" aria-label="redrive">'
        rows.append(
            f'<tr class="letter {"redriven" if red else "pending"}" data-id="{escape(d["id"])}"><td>{box}</td>'
            f"<td>{at(d['at'], True)}</td><td>{escape(d['component'])}</td><td>{badge(d['error_kind'], 'kind')}</td>"
            f"<td>{escape(d['reason'])}</td>"
            f"<td>{escape(d['source']['topic'])}<br>partition {d['source']['partition']}, offset {d['source']['offset']}</td>"
            f"<td>{tx_link(d['correlation_id'])}</td>"
            f"<td><details><summary>{escape(d['payload']['type']) if d['payload'] else 'raw'}</summary>"
            f"<pre>{escape(payload)}</pre></details></td><td class=state>{state}{history}</td></tr>")
    note = "" if caught_up else "<p class=warn>Still reading the dead-letter topics: the list may be incomplete.</p>"
    flash = f'<p class=flash id=flash>{escape(message)}</p>' if message else ""
    return f"""<h1>Dead letters</h1><nav class=tabs>{tabs}</nav>{flash}{note}
<form method=post action="/dead-letters/redrive" id=redrive>
<input type=hidden name=component value="{escape(component or '')}">
<table class=list><tr><th></th><th>dead-lettered (UTC)</th><th>component</th><th>kind</th><th>reason</th><th>original topic</th><th>correlation id</th><th>payload</th><th>redrive</th></tr>
{''.join(rows) or '<tr><td colspan=9 class=muted>none</td></tr>'}</table>
<p><button type=submit id=redrive-button>Redrive the selected to their original topic</button>
<span class=muted>Redrive sends a letter's original bytes again; a letter redriven once is never sent twice.</span></p></form>"""


def runbook(body: str) -> str:
    return f'<article class="runbook">{body}</article>'
