"""A component's worker with one fault: the first message fetched from the topic named in
``OPENGYM_TEST_DROP_TOPIC`` is handed out by the fetcher and never reaches an agent, as Faust's start-up
drop loses one (streams/commit_guard.py). The component is ``OPENGYM_TEST_COMPONENT`` (a module under
``opengym.agents``); everything else is that component, unchanged.

Run as ``faust -A tests.integration.worker_that_drops_a_message worker`` (test_restart_delivery.py).
"""

from __future__ import annotations

import importlib
import logging
import os

from faust.transport.conductor import Conductor

DROP = os.environ["OPENGYM_TEST_DROP_TOPIC"]
log = logging.getLogger("opengym.test_fault")
_compile = Conductor._compile_message_handler


def _compile_dropping_one(self):
    on_message = _compile(self)
    dropped: list[int] = []

    async def on_message_but_the_first_of_the_topic(message):
        if message.topic == DROP and not dropped:
            dropped.append(message.offset)
            log.warning("test fault: %s[%s] offset %s dropped on its way to the agent", message.topic,
                        message.partition, message.offset)
            return None
        return await on_message(message)

    return on_message_but_the_first_of_the_topic


Conductor._compile_message_handler = _compile_dropping_one
component = importlib.import_module(f"opengym.agents.{os.environ['OPENGYM_TEST_COMPONENT']}").build()
app = component.app
