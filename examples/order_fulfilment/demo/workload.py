"""The order demo's seed data and workload, planned deterministically from a seed.

A plan is pure data: articles with their stock, customers, and the orders in the order they are sent, each
tagged with the *intent* that shaped it (an article that will run out, an amount over the card limit, an
article nobody stocks). The intent says what the system is expected to answer; the pickers' fault knobs
add what goes wrong on the floor; the demo reports what it actually answered.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

from opengym_streams.event import Event
from order_fulfilment.models import PlaceOrderRequested, ReceiveStockRequested

REGULAR = "regular"
SCARCE_ARTICLE = "scarce_article"
OVER_LIMIT = "over_limit"
UNKNOWN_ARTICLE = "unknown_article"

DEFAULT_SHARES: dict[str, float] = {REGULAR: 0.75, SCARCE_ARTICLE: 0.12, OVER_LIMIT: 0.08, UNKNOWN_ARTICLE: 0.05}
"""Share of the orders planned with each intent (they sum to 1)."""

SCARCE_STOCK_SHARE = 1 / 3
"""A scarce article has stock for this share of the units ordered of it."""
CARD_LIMIT_CENTS = 50_000
"""Payments' default card limit (``OPENGYM_PAYMENTS_LIMIT_CENTS``): over-limit orders ask for more."""


@dataclass(frozen=True)
class WorkloadConfig:
    orders: int = 300
    seed: int = 7
    articles: int = 12
    customers: int = 40
    shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))


@dataclass(frozen=True)
class Article:
    sku: str
    bin: str
    stock: int
    """Units received before the orders (0: never stocked)."""
    scarce: bool = False


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: str
    sku: str
    quantity: int
    amount_cents: int
    intent: str


@dataclass(frozen=True)
class WorkloadPlan:
    run_id: str
    articles: tuple[Article, ...]
    customers: tuple[str, ...]
    orders: tuple[Order, ...]

    def intents(self) -> Counter:
        return Counter(o.intent for o in self.orders)

    @property
    def stocked(self) -> tuple[Article, ...]:
        return tuple(a for a in self.articles if a.stock > 0)


def intent_counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Split ``total`` orders by share exactly (largest remainders), so the counts sum to total."""
    weight = sum(shares.values())
    if weight <= 0:
        raise ValueError("the intent shares must not all be zero")
    raw = {intent: total * share / weight for intent, share in shares.items()}
    counts = {intent: math.floor(value) for intent, value in raw.items()}
    short = total - sum(counts.values())
    for intent in sorted(raw, key=lambda i: (raw[i] - counts[i], i), reverse=True)[:short]:
        counts[intent] += 1
    return counts


def plan_workload(config: WorkloadConfig, run_id: str | None = None) -> WorkloadPlan:
    """The whole plan. Same config and seed give the same plan; ``run_id`` only names the ids, so runs
    against the same topics never share an article, a customer or an order."""
    run_id = run_id or uuid.uuid4().hex[:8]
    rng = random.Random(config.seed)
    counts = intent_counts(config.orders, config.shares)
    regular = [f"{run_id}-sku-{i:03d}" for i in range(max(1, config.articles))]
    scarce = [f"{run_id}-sku-scarce-{i}" for i in range(2)]
    customers = tuple(f"{run_id}-customer-{i:03d}" for i in range(max(1, config.customers)))
    drafts: list[tuple[str, int, int, str]] = []  # (sku, quantity, amount, intent)
    for _ in range(counts.get(REGULAR, 0)):
        drafts.append((rng.choice(regular), rng.randint(1, 3), rng.randrange(1_000, 20_000, 50), REGULAR))
    for _ in range(counts.get(SCARCE_ARTICLE, 0)):
        drafts.append((rng.choice(scarce), 1, rng.randrange(1_000, 20_000, 50), SCARCE_ARTICLE))
    for _ in range(counts.get(OVER_LIMIT, 0)):
        drafts.append((rng.choice(regular), 1, rng.randrange(CARD_LIMIT_CENTS + 5_000, 2 * CARD_LIMIT_CENTS, 50),
                       OVER_LIMIT))
    for i in range(counts.get(UNKNOWN_ARTICLE, 0)):
        drafts.append((f"{run_id}-sku-discontinued-{i}", 1, rng.randrange(1_000, 20_000, 50), UNKNOWN_ARTICLE))
    rng.shuffle(drafts)

    demand = Counter()
    for sku, quantity, _, intent in drafts:
        if intent in (REGULAR, SCARCE_ARTICLE):
            demand[sku] += quantity
    articles = [Article(sku, f"aisle-{i // 4 + 1}-bin-{i % 4 + 1}", demand[sku] + 5) for i, sku in enumerate(regular)]
    articles += [Article(sku, f"aisle-9-bin-{i + 1}", max(1, round(demand[sku] * SCARCE_STOCK_SHARE)), scarce=True)
                 for i, sku in enumerate(scarce)]
    orders = tuple(Order(f"{run_id}-order-{n:05d}", rng.choice(customers), sku, quantity, amount, intent)
                   for n, (sku, quantity, amount, intent) in enumerate(drafts))
    return WorkloadPlan(run_id, tuple(articles), customers, orders)


# ---- the plan as events -------------------------------------------------------------------------

def _event_id(run_id: str, what: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"order-fulfilment-demo/{run_id}/{what}"))


def stock_events(plan: WorkloadPlan) -> list[Event]:
    return [ReceiveStockRequested.new(correlation_id=a.sku, event_id=_event_id(plan.run_id, a.sku), sku=a.sku,
                                      quantity=a.stock, bin=a.bin) for a in plan.stocked]


def order_event(plan: WorkloadPlan, order: Order, occurred_at: int | None = None) -> PlaceOrderRequested:
    return PlaceOrderRequested.new(correlation_id=order.order_id, event_id=_event_id(plan.run_id, order.order_id),
                                   occurred_at=occurred_at, order_id=order.order_id, customer_id=order.customer_id,
                                   sku=order.sku, quantity=order.quantity, amount_cents=order.amount_cents)
