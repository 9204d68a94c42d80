"""The fault knobs an order demo run sets, passed to the workers as environment variables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Faults:
    late_pick_share: float = 0.05
    """Share of picks confirmed after the warehouse's deadline (it gives up, then asks for the units back)."""
    late_pick_ms: int = 6000
    pick_timeout_ms: int = 4000
    """The warehouse's deadline for a pick confirmation."""
    payment_timeout_ms: int = 5000
    """Order's deadline for Payments' reply."""
    assign_timeout_ms: int = 5000
    """The warehouse's deadline for a picker assignment."""
    busy_share: float = 0.02
    """Share of orders for which every picker is busy."""
    damaged_share: float = 0.02
    """Share of picks that find the article damaged."""
    lost_pick_share: float = 0.0
    """Share of picks whose handheld never answers."""
    decline_share: float = 0.03
    """Share of card reservations the issuer declines."""
    stuck_label_share: float = 0.0
    """Share of shipments whose label never comes back from the carrier."""
    tick_interval: float = 0.25

    def env(self) -> dict[str, str]:
        return {
            "OPENGYM_PICKERS_LATE_SHARE": str(self.late_pick_share),
            "OPENGYM_PICKERS_LATE_MS": str(self.late_pick_ms),
            "OPENGYM_WAREHOUSE_PICK_TIMEOUT_MS": str(self.pick_timeout_ms),
            "OPENGYM_ORDER_PAYMENT_TIMEOUT_MS": str(self.payment_timeout_ms),
            "OPENGYM_WAREHOUSE_ASSIGN_TIMEOUT_MS": str(self.assign_timeout_ms),
            "OPENGYM_PICKERS_BUSY_SHARE": str(self.busy_share),
            "OPENGYM_PICKERS_DAMAGED_SHARE": str(self.damaged_share),
            "OPENGYM_PICKERS_LOST_SHARE": str(self.lost_pick_share),
            "OPENGYM_PAYMENTS_DECLINE_SHARE": str(self.decline_share),
            "OPENGYM_SHIPPING_STUCK_SHARE": str(self.stuck_label_share),
            "OPENGYM_TICK_INTERVAL": str(self.tick_interval),
        }
