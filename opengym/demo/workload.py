"""The demo's seed data and booking workload, planned deterministically from a seed.

A plan is pure data: gyms, classes with capacities, members with their instruments, and the
bookings in the order they are sent, each tagged with the *intent* that shaped it (a partner visit,
a booking into a class that will be full, a member whose pack runs out, ...). The intent says what
the system is expected to answer; the demo reports what it actually answered.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

from opengym_streams.event import Event, now_ms
from opengym.models import (BookClassRequested, CheckInRequested, InstrumentGrantRequested, InstrumentKind,
                            ScheduleClassRequested)

DAY_MS = 24 * 3600 * 1000

HOME_CLASS_PACK = "home_class_pack"
HOME_UNLIMITED = "home_unlimited"
PARTNER_VISIT = "partner_visit"
FULL_CLASS = "full_class"
EXHAUSTED_PACK = "exhausted_pack"
NO_ENTITLEMENT = "no_entitlement"
EXPIRED_MEMBERSHIP = "expired_membership"
UNKNOWN_CLASS = "unknown_class"

DEFAULT_SHARES: dict[str, float] = {
    HOME_CLASS_PACK: 0.38,
    HOME_UNLIMITED: 0.20,
    PARTNER_VISIT: 0.15,
    FULL_CLASS: 0.12,
    EXHAUSTED_PACK: 0.09,
    NO_ENTITLEMENT: 0.02,
    EXPIRED_MEMBERSHIP: 0.02,
    UNKNOWN_CLASS: 0.02,
}
"""Share of the bookings planned with each intent (they sum to 1)."""

EXPECTED_REJECTION = {
    NO_ENTITLEMENT: "NO_ENTITLEMENT",
    EXPIRED_MEMBERSHIP: "MEMBERSHIP_EXPIRED",
    UNKNOWN_CLASS: "UNKNOWN_CLASS",
}

POPULAR_CLASS_SEAT_SHARE = 1 / 3
"""A popular (full) class has seats for this share of the bookings aimed at it."""
EXHAUSTED_PACK_CREDITS = 2
EXHAUSTED_PACK_BOOKINGS = 4
"""A member with a nearly used pack tries about this many bookings, on credits for half of them."""


@dataclass(frozen=True)
class WorkloadConfig:
    bookings: int = 1000
    seed: int = 7
    gyms: int = 4
    classes_per_gym: int = 8
    shares: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SHARES))
    check_in_share: float = 0.9
    """Share of confirmed bookings whose member turns up and checks in."""


@dataclass(frozen=True)
class Gym:
    gym_id: str


@dataclass(frozen=True)
class GymClass:
    class_id: str
    gym_id: str
    capacity: int
    starts_at: int
    popular: bool = False


@dataclass(frozen=True)
class Member:
    member_id: str
    home_gym_id: str
    kind: str | None
    """CLASS_PACK, UNLIMITED or None (no instrument at all)."""
    credits: int | None = None
    valid_from: int | None = None
    valid_until: int | None = None

    @property
    def instrument_id(self) -> str:
        return f"{self.member_id}-instrument"


@dataclass(frozen=True)
class Booking:
    booking_id: str
    member_id: str
    class_id: str
    intent: str
    checks_in: bool


@dataclass(frozen=True)
class WorkloadPlan:
    run_id: str
    gyms: tuple[Gym, ...]
    classes: tuple[GymClass, ...]
    members: tuple[Member, ...]
    bookings: tuple[Booking, ...]

    @property
    def capacities(self) -> dict[str, int]:
        return {c.class_id: c.capacity for c in self.classes}

    def intents(self) -> Counter:
        return Counter(b.intent for b in self.bookings)

    def booking(self, booking_id: str) -> Booking:
        return self._bookings_by_id()[booking_id]

    def _bookings_by_id(self) -> dict[str, Booking]:
        cached = self.__dict__.get("_by_id")
        if cached is None:
            cached = {b.booking_id: b for b in self.bookings}
            object.__setattr__(self, "_by_id", cached)
        return cached


def intent_counts(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Split ``total`` bookings by share exactly (largest remainders), so the counts sum to total."""
    weight = sum(shares.values())
    if weight <= 0:
        raise ValueError("the intent shares must not all be zero")
    raw = {intent: total * share / weight for intent, share in shares.items()}
    counts = {intent: math.floor(value) for intent, value in raw.items()}
    short = total - sum(counts.values())
    for intent in sorted(raw, key=lambda i: (raw[i] - counts[i], i), reverse=True)[:short]:
        counts[intent] += 1
    return counts


def plan_workload(config: WorkloadConfig, run_id: str | None = None, now: int | None = None) -> WorkloadPlan:
    """The whole plan. Same config and seed give the same plan; ``run_id`` only names the ids, so
    runs against the same topics never share a class, member or booking."""
    run_id = run_id or uuid.uuid4().hex[:8]
    now = now_ms() if now is None else now
    rng = random.Random(config.seed)
    counts = intent_counts(config.bookings, config.shares)

    gyms = tuple(Gym(f"{run_id}-gym-{g}") for g in range(config.gyms))
    normal_classes: dict[str, list[str]] = {g.gym_id: [] for g in gyms}
    popular_classes: dict[str, str] = {}
    starts: dict[str, int] = {}
    for gym in gyms:
        for i in range(config.classes_per_gym):
            class_id = f"{gym.gym_id}-class-{i}"
            normal_classes[gym.gym_id].append(class_id)
            starts[class_id] = now + DAY_MS + rng.randrange(0, 6 * DAY_MS, 15 * 60 * 1000)
        class_id = f"{gym.gym_id}-class-popular"
        popular_classes[gym.gym_id] = class_id
        starts[class_id] = now + DAY_MS + rng.randrange(0, 6 * DAY_MS, 15 * 60 * 1000)

    pool_size = max(3, config.bookings // (12 * config.gyms))
    pack_pool = {g.gym_id: [f"{g.gym_id}-pack-{i}" for i in range(pool_size)] for g in gyms}
    unlimited_pool = {g.gym_id: [f"{g.gym_id}-unlimited-{i}" for i in range(pool_size)] for g in gyms}
    home_of = {m: g for g, ms in {**pack_pool}.items() for m in ms}
    home_of.update({m: g for g, ms in unlimited_pool.items() for m in ms})
    kind_of = {m: "CLASS_PACK" for ms in pack_pool.values() for m in ms}
    kind_of.update({m: "UNLIMITED" for ms in unlimited_pool.values() for m in ms})
    special: list[Member] = []
    booked: set[tuple[str, str]] = set()
    drafts: list[tuple[str, str, str]] = []  # (member, class, intent)
    gym_ids = [g.gym_id for g in gyms]

    def free_class(member: str, candidates: list[str]) -> str:
        options = [c for c in candidates if (member, c) not in booked] or candidates
        choice = rng.choice(options)
        booked.add((member, choice))
        return choice

    def entitled_member(gym_id: str) -> str:
        return rng.choice(pack_pool[gym_id] + unlimited_pool[gym_id])

    for _ in range(counts.get(HOME_CLASS_PACK, 0)):
        gym = rng.choice(gym_ids)
        member = rng.choice(pack_pool[gym])
        drafts.append((member, free_class(member, normal_classes[gym]), HOME_CLASS_PACK))
    for _ in range(counts.get(HOME_UNLIMITED, 0)):
        gym = rng.choice(gym_ids)
        member = rng.choice(unlimited_pool[gym])
        drafts.append((member, free_class(member, normal_classes[gym]), HOME_UNLIMITED))
    for _ in range(counts.get(PARTNER_VISIT, 0)):
        home = rng.choice(gym_ids)
        partner = rng.choice([g for g in gym_ids if g != home] or gym_ids)
        member = entitled_member(home)
        drafts.append((member, free_class(member, normal_classes[partner]), PARTNER_VISIT))
    popular_bookings: Counter = Counter()
    for _ in range(counts.get(FULL_CLASS, 0)):
        gym = rng.choice(gym_ids)
        candidates = [m for m in pack_pool[gym] + unlimited_pool[gym] if (m, popular_classes[gym]) not in booked]
        member = rng.choice(candidates) if candidates else f"{gym}-fan-{len(special)}"
        if not candidates:
            special.append(Member(member, gym, "UNLIMITED", valid_from=now - DAY_MS, valid_until=now + 60 * DAY_MS))
        booked.add((member, popular_classes[gym]))
        popular_bookings[popular_classes[gym]] += 1
        drafts.append((member, popular_classes[gym], FULL_CLASS))
    exhausted = counts.get(EXHAUSTED_PACK, 0)
    low_members = max(1, exhausted // EXHAUSTED_PACK_BOOKINGS) if exhausted else 0
    for index in range(low_members):
        tries = exhausted // low_members + (1 if index < exhausted % low_members else 0)
        gym = rng.choice(gym_ids)
        member = Member(f"{gym}-lowpack-{index}", gym, "CLASS_PACK",
                        credits=max(1, tries * EXHAUSTED_PACK_CREDITS // EXHAUSTED_PACK_BOOKINGS))
        special.append(member)
        for _ in range(tries):
            drafts.append((member.member_id, free_class(member.member_id, normal_classes[gym]), EXHAUSTED_PACK))
    for i in range(counts.get(NO_ENTITLEMENT, 0)):
        gym = rng.choice(gym_ids)
        member = Member(f"{gym}-walkin-{i}", gym, None)
        special.append(member)
        drafts.append((member.member_id, free_class(member.member_id, normal_classes[gym]), NO_ENTITLEMENT))
    for i in range(counts.get(EXPIRED_MEMBERSHIP, 0)):
        gym = rng.choice(gym_ids)
        member = Member(f"{gym}-lapsed-{i}", gym, "UNLIMITED", valid_from=now - 90 * DAY_MS,
                        valid_until=now - DAY_MS)
        special.append(member)
        drafts.append((member.member_id, free_class(member.member_id, normal_classes[gym]), EXPIRED_MEMBERSHIP))
    for i in range(counts.get(UNKNOWN_CLASS, 0)):
        gym = rng.choice(gym_ids)
        drafts.append((rng.choice(pack_pool[gym]), f"{gym}-class-cancelled-{i}", UNKNOWN_CLASS))

    rng.shuffle(drafts)

    bookings_per_member = Counter(member for member, _, _ in drafts)
    members = [
        Member(m, home_of[m], "CLASS_PACK", credits=bookings_per_member[m] + 3) if kind_of[m] == "CLASS_PACK"
        else Member(m, home_of[m], "UNLIMITED", valid_from=now - 30 * DAY_MS, valid_until=now + 60 * DAY_MS)
        for ms in list(pack_pool.values()) + list(unlimited_pool.values()) for m in ms
    ] + special

    bookings_per_class = Counter(class_id for _, class_id, _ in drafts)
    classes = []
    for gym in gym_ids:
        for class_id in normal_classes[gym]:
            classes.append(GymClass(class_id, gym, bookings_per_class[class_id] + 2, starts[class_id]))
        popular = popular_classes[gym]
        seats = max(1, round(popular_bookings[popular] * POPULAR_CLASS_SEAT_SHARE))
        classes.append(GymClass(popular, gym, seats, starts[popular], popular=True))

    bookings = tuple(
        Booking(f"{run_id}-booking-{n:05d}", member, class_id, intent, rng.random() < config.check_in_share)
        for n, (member, class_id, intent) in enumerate(drafts)
    )
    return WorkloadPlan(run_id, gyms, tuple(classes), tuple(members), bookings)


# ---- the plan as events -------------------------------------------------------------------------

def _event_id(run_id: str, what: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"opengym-demo/{run_id}/{what}"))


def schedule_events(plan: WorkloadPlan) -> list[Event]:
    return [
        ScheduleClassRequested.new(correlation_id=c.class_id, event_id=_event_id(plan.run_id, c.class_id),
                                   class_id=c.class_id, gym_id=c.gym_id, capacity=c.capacity,
                                   starts_at=c.starts_at)
        for c in plan.classes
    ]


def grant_events(plan: WorkloadPlan) -> list[Event]:
    return [
        InstrumentGrantRequested.new(
            correlation_id=m.instrument_id, event_id=_event_id(plan.run_id, m.instrument_id),
            instrument_id=m.instrument_id, member_id=m.member_id, home_gym_id=m.home_gym_id,
            kind=InstrumentKind(m.kind), credits=m.credits, valid_from=m.valid_from, valid_until=m.valid_until)
        for m in plan.members if m.kind is not None
    ]


def booking_event(plan: WorkloadPlan, booking: Booking, occurred_at: int | None = None) -> BookClassRequested:
    return BookClassRequested.new(correlation_id=booking.booking_id,
                                  event_id=_event_id(plan.run_id, booking.booking_id),
                                  occurred_at=occurred_at, booking_id=booking.booking_id,
                                  member_id=booking.member_id, class_id=booking.class_id)


def check_in_event(plan: WorkloadPlan, booking: Booking) -> CheckInRequested:
    return CheckInRequested.new(correlation_id=booking.booking_id,
                                event_id=_event_id(plan.run_id, f"{booking.booking_id}/check-in"),
                                booking_id=booking.booking_id, member_id=booking.member_id)
