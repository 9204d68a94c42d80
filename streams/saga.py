"""Runs an orchestration's step table: pure handlers ``(state, event, now) -> (state, events) | Ignored``.

One state record per orchestration instance (keyed like its trigger)::

    {"phase": <the step's waits_in> | <succeeded_phase> | <failed_phase>,
     "step": index of the step waited on (None once ended), "started_at", "due_at",
     "data": {what the trigger and the success replies kept}, "done": [steps that succeeded],
     "early": {reply type: reply}, "compensated": [steps undone], "reason", "timed_out"}

What happens to every event, in every phase, is decided here once for all orchestrations:

- the trigger starts the first step (a second trigger for a running instance is ignored);
- the awaited reply: a success keeps its data and starts the next step, or the success terminal after
  the last; a failure ends in the failure terminal; a reply dated after the deadline of a step whose
  ``late_reply`` is ``time_out`` is a timeout;
- a tick at or past the deadline of the step waited on is a timeout (the step's ``on_timeout`` reason);
- failing undoes every step that had succeeded (its compensation), after the failure terminal;
- a reply for an instance not started yet waits for its trigger (:func:`~opengym_streams.event.not_yet`:
  only a replay reads it first);
- a reply for a later step that arrives first (a replay after a crash delivered it before the reply it
  follows) is kept and used when that step starts, instead of asking again;
- after a failure, a success reply of a step with a compensation is undone (a late consume is
  released), once per step; every other reply after the end is ignored, with the reason.
"""

from __future__ import annotations

from typing import Any

from opengym_streams.catalog import Orchestration, Step
from opengym_streams.event import Event, Handler, Ignored, Result, derived_event_id, ignore, not_yet, value_of

CLOCK_TICKED = "ClockTicked"


class Saga:
    """The executable form of one :class:`~streams.catalog.Orchestration`."""

    def __init__(self, orchestration: Orchestration):
        self.orchestration = orchestration
        self.steps = orchestration.steps
        self._step_of_reply: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            for reply in step.reply_names:
                if reply in self._step_of_reply:
                    raise ValueError(f"{orchestration.name}: {reply} answers two steps")
                self._step_of_reply[reply] = index

    # ---- what the runtime reads ---------------------------------------------------------------------

    def handlers(self) -> dict[str, Handler]:
        found: dict[str, Handler] = {self.orchestration.trigger: self.on_trigger, CLOCK_TICKED: self.on_tick}
        for reply in self._step_of_reply:
            found[reply] = self.on_reply
        return found

    def outcomes(self) -> dict[str, Any]:
        orch = self.orchestration
        found: dict[str, Any] = {orch.succeeded.event: orch.succeeded.outcome, orch.failed.event: orch.failed.outcome}
        for step in self.steps:
            if step.compensation is not None and step.compensation.outcome is not None:
                found[step.compensation.request] = step.compensation.outcome
        return found

    @staticmethod
    def wake_at(state: dict) -> int | None:
        """When a tick can next change this instance: the deadline of the step it waits on."""
        return state.get("due_at") if state.get("step") is not None else None

    # ---- handlers -----------------------------------------------------------------------------------

    def on_trigger(self, state: dict | None, event: Event, now: int) -> Result | Ignored:
        if state is not None:
            return ignore(f"{self.orchestration.name} already started")
        started = {"phase": None, "step": None, "started_at": event.occurred_at, "due_at": None,
                   "data": self.orchestration.start(event), "done": [], "early": {}, "compensated": [],
                   "reason": None, "timed_out": False}
        return self._enter(started, 0, event, now)

    def on_reply(self, state: dict | None, reply: Event, now: int) -> Result | Ignored:
        orch = self.orchestration
        if state is None:
            # A replay can read a reply before the trigger of its instance (they are on other topics):
            # kept until the trigger comes, then used instead of asking again (a request asked again
            # after its deadline would time out what the first run decided on this reply).
            return not_yet(f"no {orch.name} here yet")
        index = self._step_of_reply[reply.type_name]
        step = self.steps[index]
        if state["phase"] == orch.succeeded_phase:
            return ignore(f"{orch.name} has succeeded")
        if state["phase"] == orch.failed_phase:
            meaning = step.reply(reply.type_name)
            if step.compensation is not None and meaning.succeeds and index not in state["compensated"]:
                undo = step.compensation.build({**state["data"], **self._kept(meaning, reply)}, reply, now)
                return {**state, "compensated": [*state["compensated"], index]}, [undo]
            return ignore(f"{orch.name} has failed; nothing to undo")
        current = state["step"]
        if index == current:
            return self._answer(state, index, reply, now)
        if index > current:
            # Only a replay delivers this first (the request it answers was sent before a crash lost the
            # state that said so); asking again would be answered from the participant's dedupe.
            return {**state, "early": {**state["early"], reply.type_name: reply.to_json_dict()}}, []
        return ignore(f"{step.name} is done")

    def on_tick(self, state: dict | None, tick: Event, now: int) -> Result | Ignored:
        if state is None or state.get("step") is None:
            return ignore("not waiting")
        if tick.now < state["due_at"]:
            return ignore("not due")
        # The timeout's events get ids from the step and its deadline, not from the tick that noticed it:
        # a replay after a crash may notice it with another tick, and must publish the same ids.
        deadline = tick.model_copy(update={"event_id": derived_event_id(
            tick.correlation_id, "StepTimedOut", f"{state['step']}/{state['due_at']}", tick.correlation_id)})
        return self._fail(state, self.steps[state["step"]].on_timeout, deadline, tick.now, timed_out=True)

    # ---- internals ----------------------------------------------------------------------------------

    def _enter(self, state: dict, index: int, cause: Event, now: int) -> Result:
        step: Step = self.steps[index]
        since = state["started_at"] if step.deadline_from == "trigger" else now
        state = {**state, "phase": step.waits_in, "step": index, "due_at": since + step.deadline_ms}
        early = next((state["early"][name] for name in step.reply_names if name in state["early"]), None)
        if early is not None:
            from opengym_streams.codec import build_event

            state = {**state, "early": {k: v for k, v in state["early"].items() if k not in step.reply_names}}
            return self._answer(state, index, build_event(early, fill_envelope=False), now)
        return state, [step.ask(state["data"], cause, now)]

    def _answer(self, state: dict, index: int, reply: Event, now: int) -> Result:
        step = self.steps[index]
        meaning = step.reply(reply.type_name)
        if step.late_reply == "time_out" and reply.occurred_at > state["due_at"]:
            failed, out = self._fail(state, step.on_timeout, reply, now, timed_out=True)
            if meaning.succeeds and step.compensation is not None:
                out.append(step.compensation.build({**failed["data"], **self._kept(meaning, reply)}, reply, now))
                failed = {**failed, "compensated": [*failed["compensated"], index]}
            return failed, out
        if not meaning.succeeds:
            return self._fail(state, meaning.reason(reply), reply, now)
        state = {**state, "data": {**state["data"], **self._kept(meaning, reply)}, "done": [*state["done"], index]}
        if index + 1 < len(self.steps):
            return self._enter(state, index + 1, reply, now)
        orch = self.orchestration
        return ({**state, "phase": orch.succeeded_phase, "step": None, "due_at": None},
                [orch.succeeded.build(state["data"], reply, now)])

    @staticmethod
    def _kept(meaning, reply: Event) -> dict:
        return meaning.keep(reply) if meaning.keep is not None else {}

    def _fail(self, state: dict, reason: Any, cause: Event, now: int, *, timed_out: bool = False) -> Result:
        orch = self.orchestration
        out = [orch.failed.build(state["data"], cause, now, reason)]
        undo = [i for i in state["done"] if self.steps[i].compensation is not None and i not in state["compensated"]]
        out += [self.steps[i].compensation.build(state["data"], cause, now) for i in undo]
        return ({**state, "phase": orch.failed_phase, "step": None, "due_at": None, "reason": value_of(reason),
                 "timed_out": timed_out, "compensated": [*state["compensated"], *undo]}, out)
