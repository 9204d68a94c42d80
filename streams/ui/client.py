"""The CLI's side of the JSON API: ask a running observer, or say why not (so the caller falls back)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from opengym_streams.ui import DEFAULT_PORT


def observer_url() -> str:
    """``OPENGYM_UI_URL``, else the UI's port on this machine."""
    from opengym_streams.ui import UIConfig

    config = UIConfig.from_env()
    return (config.url or f"http://127.0.0.1:{config.port if config.port is not None else DEFAULT_PORT}").rstrip("/")


@dataclass
class Answer:
    data: Any = None
    status: int | None = None
    why_not: str | None = None
    """Set when no observer for these topics answered: the caller reads the topics instead."""


def ask(path: str, query: dict[str, Any] | None = None, prefix: str = "", timeout: float = 10.0) -> Answer:
    """GET ``path`` from the observer serving ``prefix``'s topics; 404 is an answer, not a failure."""
    base = observer_url()
    try:
        with urllib.request.urlopen(f"{base}/api/health", timeout=timeout) as response:
            health = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return Answer(why_not=f"no observer answered at {base} ({reason})")
    if health.get("prefix", "") != prefix:
        return Answer(why_not=f"the observer at {base} serves topic prefix {health.get('prefix')!r}, not {prefix!r}")
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})}"
                             if query else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Answer(json.load(response), response.status)
    except urllib.error.HTTPError as exc:
        try:
            return Answer(json.load(exc), exc.code)
        except ValueError:
            return Answer(why_not=f"the observer at {base} answered {exc.code} to {path}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Answer(why_not=f"the observer at {base} did not answer {path} ({exc})")
