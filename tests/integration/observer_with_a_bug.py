"""``agents.correlation``'s app as it ran before a fix: while the file named by ``OPENGYM_TEST_BUG_FILE``
exists, handling a NotificationSent whose booking id contains ``redrive`` raises, so the runtime
dead-letters it (HANDLER_ERROR). Deleting the file is the deploy of the fix. The browser test runs this
module as a real worker (``faust -A tests.integration.observer_with_a_bug worker``) to have a dead letter
that a redrive can bring through; everything else is the observer, unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import agents.correlation as correlation

BUG = Path(os.environ.get("OPENGYM_TEST_BUG_FILE", "/nonexistent"))
_on_event = correlation.observer.on_event


def _on_event_before_the_fix(state, event, now, source=None):
    if BUG.exists() and event.type_name == "NotificationSent" and "redrive" in event.correlation_id:
        raise RuntimeError("NotificationSent: a bug in this observer build (fixed by the next deploy)")
    return _on_event(state, event, now, source)


correlation.observer.on_event = _on_event_before_the_fix
app = correlation.app
