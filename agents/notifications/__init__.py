"""Notifications: listens to ReservationConfirmed; emits one NotificationSent per confirmed booking.

``OPENGYM_NOTIFICATIONS_PAUSED=1`` starts a worker that consumes nothing (the fault knob behind the
observer's DOWNSTREAM_NOT_STARTED): confirmations wait in Kafka until a worker without it runs.
Run: ``opengym worker notifications`` or ``faust -A agents.notifications worker -l info``.
"""

from __future__ import annotations

import logging

from opengym import topics
from opengym.agents.notifications import logic
from opengym_streams.component import Agent, Component, module_app
from opengym_streams.settings import Settings


def build(settings: Settings | None = None) -> Component:
    from opengym.agents.system import SYSTEM

    config = logic.NotificationsConfig.from_env()
    agents = (Agent("notify", reads=(topics.RESERVATION_EVENTS,), table="notifications",
                    handlers={"ReservationConfirmed": logic.on_confirmed}, outcomes={"NotificationSent": "sent"}),)
    if config.paused:
        logging.getLogger("opengym.app").warning("notifications: OPENGYM_NOTIFICATIONS_PAUSED is set, consuming nothing")
        agents = ()
    return Component(SYSTEM.component("notifications"), topics=topics.CATALOG, settings=settings, agents=agents)


__getattr__ = module_app(build)
