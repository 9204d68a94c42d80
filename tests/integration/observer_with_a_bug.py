"""``opengym.agents.correlation``'s app as it ran before a fix: handling a NotificationSent whose correlation id
contains one of the words listed in the file ``OPENGYM_TEST_BUG_FILE`` raises, so the runtime
dead-letters it (HANDLER_ERROR). Taking a word out of the file is the deploy of the fix for it. The
browser test runs this module as a real worker (``faust -A tests.integration.observer_with_a_bug
worker``) to have dead letters that a redrive can bring through, or see fail again; everything else is the
observer, unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import opengym.agents.correlation as correlation

BUG = Path(os.environ.get("OPENGYM_TEST_BUG_FILE", "/nonexistent"))
component = correlation.build()
engine = component.observing.observer
_on_event = engine.on_event


def _on_event_before_the_fix(state, event, now, source=None):
    if event.type_name == "NotificationSent" and BUG.exists():
        if any(word and word in event.correlation_id for word in BUG.read_text().split()):
            raise RuntimeError("NotificationSent: a bug in this observer build (fixed by the next deploy)")
    return _on_event(state, event, now, source)


engine.on_event = _on_event_before_the_fix
app = component.app
