"""The components' fault knobs a demo run sets, passed to the workers as environment variables."""

from __future__ import annotations

from dataclasses import dataclass

from opengym.demo.facts import downstream_types


@dataclass(frozen=True)
class Faults:
    delay_share: float = 0.05
    """Share of consume requests Entitlement answers late."""
    delay_ms: int = 7000
    booking_timeout_ms: int = 5000
    """Reservation's nested deadline for Entitlement's reply (the components' own default)."""
    payment_failure_rate: float = 0.1
    pause_notifications: bool = False
    tick_interval: float = 0.25
    """Seconds between the clock ticks that bring time into the components."""

    def env(self) -> dict[str, str]:
        env = {
            "OPENGYM_ENTITLEMENT_DELAY_SHARE": str(self.delay_share),
            "OPENGYM_ENTITLEMENT_DELAY_MS": str(self.delay_ms),
            "OPENGYM_BOOKING_TIMEOUT_MS": str(self.booking_timeout_ms),
            "OPENGYM_PAYMENT_FAILURE_RATE": str(self.payment_failure_rate),
            "OPENGYM_TICK_INTERVAL": str(self.tick_interval),
        }
        if self.pause_notifications:
            env["OPENGYM_NOTIFICATIONS_PAUSED"] = "1"
        return env

    @property
    def expected_downstream(self) -> tuple[str, ...]:
        return downstream_types(exclude_owners=("notifications",) if self.pause_notifications else ())

    @property
    def paused(self) -> tuple[str, ...]:
        """Components whose worker runs but publishes nothing."""
        return ("notifications",) if self.pause_notifications else ()
