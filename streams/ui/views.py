"""The Faust web views of the transaction view: HTML pages and the JSON API (see :mod:`streams.ui`)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import quote

from faust.web import View
from yarl import URL

from opengym_streams.ui import merge_overviews, merge_transactions, pages
from opengym_streams.ui.model import Filters, mermaid


def register(app, ui) -> None:
    table = ui.table
    processes = [name for _, name in ui.observer.catalog.process_names()]
    components = sorted(ui.dead_letter_topics)

    def footer() -> str:
        peers = ui.peers()
        return (f"app {app.conf.id} · observer time {pages.at(ui.now(), True)} UTC · "
                + (f"lists gather {len(peers) + 1} workers" if peers else "one worker holds every partition"))

    def routed(handler):
        """Serve a key's request on the worker holding its partition (proxied there when it is not us)."""
        async def get(view, request, cid):
            url = await ui.owner_url(cid)
            if url is None or ui.is_me(url):
                return await handler(view, request, cid)
            target = URL(url)
            async with app.http_client.request(method=request.method, headers=request.headers,
                                               url=request.url.with_host(target.host).with_port(target.port)) as r:
                return view.text(await r.text(), content_type=r.content_type, status=r.status)
        return get

    def html(view, body: str, **kw):
        return view.html(pages.layout(kw.pop("title"), body, note=footer(), **kw))

    async def overview_data(request) -> dict:
        local = ui.overview_local()
        if request.query.get("local"):
            return local
        return merge_overviews([local, *await ui.gather("/api/overview", {})])

    async def transactions_data(request) -> dict:
        f = Filters.from_query(request.query)
        local = ui.transactions_local(f)
        if request.query.get("local"):
            return local
        return merge_transactions([local, *await ui.gather("/api/transactions", dict(request.query))], f.limit)

    @app.page("/")
    class OverviewPage(View):
        async def get(self, request):
            data = await overview_data(request)
            head = ('<script src="/static/mermaid/mermaid.min.js" defer></script>' if ui.mermaid_available() else "")
            diagrams = mermaid(ui.observer.catalog)
            body = pages.overview(data, diagrams, ui.links, "")
            if not ui.mermaid_available():
                body += ('<p class=warn>The diagrams cannot render: there is no Mermaid bundle here (set '
                         '<code>OPENGYM_MERMAID_DIR</code> to a mermaid <code>dist</code> directory, or run '
                         '<code>make install</code> in a checkout), so each shows as its source.</p>')
            return html(self, body, title="Overview", active="overview", head=head)

    @app.page("/transactions")
    class TransactionsPage(View):
        async def get(self, request):
            data = await transactions_data(request)
            return html(self, pages.transactions(data, Filters.from_query(request.query), processes),
                        title="Transactions", active="transactions")

    @app.page("/transactions/{cid}")
    class TransactionPage(View):
        @routed
        async def get(self, request, cid):
            letters = ui.letters(correlation_id=cid)
            published = ui.anomalies_of(cid)
            data = ui.transaction(cid)
            if data is None:
                body = pages.not_in_state(cid, letters, published, ui.observer.config.retention_ms)
                return html(self, body, title=cid, active="transactions")
            return html(self, pages.transaction(data, letters, published, ui.links), title=cid,
                        active="transactions")

    @app.page("/dead-letters")
    class DeadLettersPage(View):
        async def get(self, request):
            component = request.query.get("component") or None
            letters = ui.letters(component=component)
            pending: dict[str, int] = {}
            for d in ui.letters(pending_only=True):
                pending[d["component"]] = pending.get(d["component"], 0) + 1
            body = pages.dead_letters(letters, components, component, request.query.get("done"), ui.caught_up(),
                                      pending)
            return html(self, body, title="Dead letters", active="dead-letters")

    @app.page("/dead-letters/redrive")
    class RedriveForm(View):
        async def post(self, request):
            form = await request.post()
            ids = form.getall("id", [])
            component = form.get("component") or ""
            if ids:
                result = await asyncio.to_thread(ui.redrive, ids, "observer UI")
                done = result["summary"] + "".join(f"; {s['id']}: {s['why']}" for s in result["skipped"])
            else:
                done = "nothing selected: tick the dead letters to redrive"
            where = f"/dead-letters?done={quote(done)}" + (f"&component={quote(component)}" if component else "")
            return self.html("", status=303, headers={"Location": where})

    @app.page("/runbook")
    class RunbookPage(View):
        async def get(self, request):
            from opengym_streams.ui.links import render_markdown

            text = ui.runbook_file.read_text() if ui.runbook_file and ui.runbook_file.exists() else "No runbook."
            return html(self, pages.runbook(render_markdown(text)), title="Runbook", active="runbook", live=False)

    @app.page("/static/{name}")
    class Static(View):
        async def get(self, request, name):
            return _static(self, name)

    @app.page("/static/mermaid/{name}")
    class StaticMermaid(View):
        async def get(self, request, name):
            return _static(self, f"mermaid/{name}")

    def _static(view, name: str):
        found = ui.static(name)
        if found is None:
            return view.text(f"no such asset: {name}", status=404)
        body, content_type = found
        return view.bytes(body, content_type=content_type, headers={"Cache-Control": "max-age=3600"})

    # ---- JSON API ----------------------------------------------------------------------------------

    @app.page("/api/health")
    class Health(View):
        async def get(self, request):
            key = request.query.get("key")
            held_by = (await ui.owner_url(key) or str(app.conf.canonical_url)) if key else None
            return self.json({"app": app.conf.id, "url": str(app.conf.canonical_url), "prefix": ui.prefix,
                              "now": ui.now(), "table": table.name, "partitions": sorted(ui.my_partitions() or ()),
                              "caught_up": ui.caught_up(), "peers": ui.peers(),
                              **({"key": key, "partition": ui.partition_of(key), "held_by": held_by} if key else {})})

    @app.page("/api/overview")
    class OverviewApi(View):
        async def get(self, request):
            return self.json(await overview_data(request))

    @app.page("/api/transactions")
    class TransactionsApi(View):
        async def get(self, request):
            return self.json(await transactions_data(request))

    @app.page("/api/transactions/{cid}")
    class TransactionApi(View):
        @routed
        async def get(self, request, cid):
            data = ui.transaction(cid)
            published = [a.to_json_dict() for a in ui.anomalies_of(cid)]
            letters = ui.letters(correlation_id=cid)
            if data is None:
                return self.json({"correlation_id": cid, "in_state": False, "anomalies_published": published,
                                  "dead_letters": letters}, status=404)
            return self.json({**data, "in_state": True, "anomalies_published": published, "dead_letters": letters})

    @app.page("/api/dead-letters")
    class DeadLettersApi(View):
        async def get(self, request):
            q = request.query
            letters = ui.letters(component=q.get("component") or None, error_kind=q.get("kind") or None,
                                 correlation_id=q.get("correlation_id") or None)
            return self.json({"caught_up": ui.caught_up(), "dead_letters": letters})

    @app.page("/api/dead-letters/redrive")
    class RedriveApi(View):
        async def post(self, request):
            body = json.loads(await request.text() or "{}")
            ids = body.get("ids") or []
            if not ids:
                return self.json({"error": "give the ids of the dead letters to redrive"}, status=400)
            return self.json(await asyncio.to_thread(ui.redrive, ids, body.get("by") or "observer API"))
