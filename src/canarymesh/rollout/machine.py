"""The canary state machine: ``advance(state, observation, now) -> Decision``. Pure.

:func:`advance` is the one entry point, for the controller and for anything that evaluates the
controller from outside: the controller loop calls it on every tick (once a second) with what it
observed (the Canary spec as it is now, whether the proxies applied the last weights, the new
metric windows, the stable's traffic before the rollout, webhook answers, a manual command) and
executes the decision's actions through the ports; ``canarymesh rollout simulate`` and
``bench/judge.py`` call it through the same loop against simulated traffic. Nothing here does I/O
or reads a clock: ``now`` is a parameter and the result depends on nothing else, so a decision
can be replayed from a stored state and observation.

Rules every phase follows (see :mod:`canarymesh.rollout.phases` for the phases):

* Weights first, clock second: a step's clock (and the usable metric windows) start only when
  the router verified that every proxy applied the step's weights.
* Metrics unreachable: hold (never promote, never pass a step), and say so.
* No progress for ``progressDeadline`` (outside manual gates): roll back.
* Roll back at once: the first decision of a rollback already sets every request to the stable.
* Every decision carries a reason with the numbers.
* No evidence left behind: an analysis step ends only once the windows up to its end have
  been judged.
* The statistical judge starts from the stable's traffic before the rollout (the observation's
  ``baseline``): the rollout waits in Initializing until the controller has measured it, and
  says then what the plan can and cannot see at that traffic
  (:mod:`canarymesh.analysis.planning`).
* Adaptive mode (``strategy.canary.adaptive``): an analysis step ends as soon as the evidence
  clears its gate (:func:`canarymesh.analysis.planning.gates`), or at its duration when the
  evidence leans towards the canary being fine; otherwise it holds until the evidence decides,
  or, while no metric is against the canary and its evidence leans the canary's way even
  slightly, for half the progress deadline (then the step ends as the fixed plan's would, so
  thin traffic does not time a healthy canary out). The weights are the plan's: never above
  ``maxWeight``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from canarymesh.analysis import planning
from canarymesh.analysis.baseline import Baseline
from canarymesh.analysis.statistical import LATENCY, MetricTest
from canarymesh.analysis.verdict import VerdictPhase, worst
from canarymesh.analysis.windows import INGRESS_SCOPE, Window
from canarymesh.api.canary import Canary
from canarymesh.rollout import judging
from canarymesh.rollout.actions import (
    Action,
    FinalizeRoutes,
    ReconcileRoutes,
    RunWebhook,
    SetWeights,
    StartLoad,
    StopLoad,
    Weights,
)
from canarymesh.rollout.phases import TERMINAL, Command, Phase
from canarymesh.rollout.plan import Step, build_plan
from canarymesh.rollout.state import CanaryState

__all__ = ["Decision", "Observation", "WebhookResult", "advance", "needs_baseline"]

# How soon to look again while waiting for proxies or webhooks (weights apply in milliseconds).
SHORT_REQUEUE = datetime.timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class WebhookResult:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Observation:
    """What the controller saw since the last decision.

    ``canary``: the Canary spec as it is now (a user may edit it mid-rollout).
    ``weights_verified``: the router's ``verify_weights`` for the state's desired weights.
    ``windows``: metric windows that ended since the last decision; the machine keeps only
    those measured after the weights were verified. ``baseline``: the stable's traffic before
    the rollout (the controller measures it while the state has none, see :func:`needs_baseline`).
    ``webhooks``: answers of the webhooks the last decision asked for.
    """

    canary: Canary
    weights_verified: bool = False
    metrics_online: bool = True
    windows: tuple[Window, ...] = ()
    webhooks: tuple[WebhookResult, ...] = ()
    command: Command | None = None
    baseline: Baseline | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The state to persist, the actions to execute (in order), why, and when to look again
    (one analysis interval while a step runs, a second while waiting for proxies or hooks)."""

    state: CanaryState
    actions: tuple[Action, ...]
    reason: str
    requeue_after: datetime.timedelta = SHORT_REQUEUE


@dataclass(slots=True)
class _Tick:
    """One call of :func:`advance`: its inputs, and the actions gathered so far."""

    spec: Canary
    plan: tuple[Step, ...]
    observation: Observation
    now: datetime.datetime
    actions: list[Action] = field(default_factory=list)
    note: str = ""

    def decide(self, state: CanaryState, reason: str, wait: bool = False) -> Decision:
        reason += self.note
        state = state.with_message(reason, self.now)
        requeue = self.spec.interval() if wait else SHORT_REQUEUE
        return Decision(state, tuple(self.actions), reason, requeue)

    def hooks(self, kind: str) -> tuple[str, ...]:
        return tuple(w.name for w in self.spec.webhooks if w.type == kind)

    def call_hooks(self, kind: str) -> None:
        self.actions.extend(RunWebhook(name, kind) for name in self.hooks(kind))


def advance(state: CanaryState, observation: Observation, now: datetime.datetime) -> Decision:
    """The next state of the rollout, the actions that get there, and why.

    Pure: the same ``state``, ``observation`` and ``now`` always give the same decision. The
    decision's ``state`` is what to persist and pass to the next call; its ``actions`` are for
    the caller to carry out (the next observation says whether they took effect).
    """
    tick = _Tick(observation.canary, build_plan(observation.canary), observation, now)
    if state.phase in TERMINAL:
        return Decision(state, (), state.message, tick.spec.interval())
    if observation.command is not None:
        state = _apply_command(tick, state, observation.command)
        if state.phase is Phase.ROLLING_BACK and tick.actions:
            return tick.decide(state, state.message)
    return _HANDLERS[state.phase](tick, state)


def needs_baseline(state: CanaryState, spec: Canary) -> bool:
    """Whether the next observation should carry the stable's traffic before the rollout."""
    return (
        state.phase is Phase.INITIALIZING
        and state.baseline is None
        and not spec.skip_analysis
        and any(judging.is_sequential(spec, check) for check in spec.metric_checks())
    )


# --- commands -------------------------------------------------------------------------------


def _apply_command(tick: _Tick, state: CanaryState, command: Command) -> CanaryState:
    if state.phase is Phase.ROLLING_BACK:
        return state  # a rollback is never undone by a command: start a new rollout instead
    if command is Command.ABORT:
        return _start_rollback(tick, state, "aborted by user")
    if command is Command.PROMOTE and state.phase is not Phase.PROMOTING:
        reason = f"promoted by user at step {state.step + 1} of {len(tick.plan)}"
        return state.with_resumed(tick.now).with_phase(Phase.PROMOTING, reason, tick.now)
    if command is Command.PAUSE and state.phase is Phase.PROGRESSING:
        return state.with_paused(True).with_phase(Phase.PAUSED, "paused by user", tick.now)
    if command is Command.RESUME and state.phase is Phase.PAUSED:
        state = state.with_resumed(tick.now)
        step = tick.plan[state.step] if state.step < len(tick.plan) else None
        if step is not None and step.kind == "pause" and step.duration is None:
            state = state.with_step(state.step + 1, tick.now)
        return state.with_phase(Phase.PROGRESSING, "resumed by user", tick.now)
    return state


# --- phases ---------------------------------------------------------------------------------


def _initializing(tick: _Tick, state: CanaryState) -> Decision:
    if _past_deadline(tick, state):
        return _rollback(tick, state, _deadline_reason(tick, state))
    wanted = Weights(0, state.weights.stable_subset, match=bool(tick.spec.match()))
    changed = state.weights != wanted
    if changed:
        state = state.with_weights(wanted)
    pre = tick.hooks("pre-rollout")
    answers = {r.name: r for r in tick.observation.webhooks}
    refused = [answers[name] for name in pre if name in answers and not answers[name].ok]
    if refused:
        state = state.with_failed_check()
        limit = tick.spec.analysis.failure_limit
        reason = f"pre-rollout webhook {refused[0].name} failed: {refused[0].detail}"
        if state.failed_checks >= limit:
            counts = f"failed checks {state.failed_checks} >= failureLimit {limit}"
            return _rollback(tick, state, f"{reason} ({counts}): rolling back")
    ready = all(name in answers and answers[name].ok for name in pre)
    if needs_baseline(state, tick.spec) and tick.observation.baseline is not None:
        state = _with_baseline(tick, state, tick.observation.baseline)
    measuring = needs_baseline(state, tick.spec)
    if ready and tick.observation.weights_verified and not changed and not measuring:
        state = state.with_verified(tick.now).with_step(0, tick.now)
        if tick.spec.load_generator is not None:
            tick.actions.append(StartLoad())
        state = state.with_phase(Phase.PROGRESSING, "routes ready: starting step 1", tick.now)
        return _progressing(tick, state)
    tick.actions.append(ReconcileRoutes(state.weights))
    waiting = [name for name in pre if not (name in answers and answers[name].ok)]
    tick.actions.extend(RunWebhook(name, "pre-rollout") for name in waiting)
    what = "the managed routes to be reconciled"
    if waiting:
        what += f" and pre-rollout webhooks {', '.join(waiting)}"
    if measuring:
        what += " and the stable's traffic before the rollout to be measured"
        if not tick.observation.metrics_online:
            what += " (metrics source unreachable)"
    if refused:  # ask again one interval later, as Flagger does, not every second
        return tick.decide(state, f"{reason}; waiting for {what}", wait=True)
    return tick.decide(state, f"waiting for {what}")


def _progressing(tick: _Tick, state: CanaryState) -> Decision:
    at_gate = state.step >= len(tick.plan)
    if not at_gate and _past_deadline(tick, state):
        return _rollback(tick, state, _deadline_reason(tick, state))
    if not tick.observation.metrics_online and not tick.spec.skip_analysis:
        reason = (
            f"metrics source unreachable: holding at step {_step_text(tick, state)} "
            f"({state.weights.describe()}); no promotion without metrics"
        )
        return tick.decide(state, reason, wait=True)
    judged = _judge(tick, state)
    if isinstance(judged, Decision):
        return judged
    state = judged
    while state.step < len(tick.plan):
        moved = _run_step(tick, state, tick.plan[state.step])
        if isinstance(moved, Decision):
            return moved
        state = moved.with_step(state.step + 1, tick.now)
    return _await_promotion(tick, state)


def _paused(tick: _Tick, state: CanaryState) -> Decision:
    judged = _judge(tick, state)
    if isinstance(judged, Decision):
        return judged
    return tick.decide(judged, judged.message, wait=True)


def _await_promotion(tick: _Tick, state: CanaryState) -> Decision:
    gates = tick.hooks("confirm-promotion")
    answers = {r.name: r for r in tick.observation.webhooks}
    waiting = [name for name in gates if not (name in answers and answers[name].ok)]
    if waiting:
        tick.actions.extend(RunWebhook(name, "confirm-promotion") for name in waiting)
        reason = f"all {len(tick.plan)} steps passed; waiting for confirm-promotion webhook "
        return tick.decide(state, reason + ", ".join(waiting), wait=True)
    last = _verdict_text(state)
    reason = f"all {len(tick.plan)} steps passed{last}: promoting"
    state = state.with_resumed(tick.now)
    return _promoting(tick, state.with_phase(Phase.PROMOTING, reason, tick.now))


def _promoting(tick: _Tick, state: CanaryState) -> Decision:
    canary = tick.spec.canary_subset()
    if state.promotion_stage == 0:
        if _past_deadline(tick, state):
            return _rollback(tick, state, _deadline_reason(tick, state))
        target = Weights(100, state.weights.stable_subset)
        if state.weights != target:
            return _set_weights(tick, state, target, "promoting: every request to the canary")
        if not _verified(tick, state):
            return tick.decide(state, "promoting: waiting for the proxies to send 100% to canary")
        state = state.with_promotion_stage(1).with_weights(Weights(0, canary))
        tick.actions.append(FinalizeRoutes(canary))
        named = f"{canary} as stable"
        if tick.spec.group is not None:  # every member at once: its canary subset alone
            named = "each member's canary subset as stable, the ingress as written"
        return tick.decide(state, f"promoting: the managed routes now name {named}")
    if not _verified(tick, state):
        tick.actions.append(FinalizeRoutes(canary))
        return tick.decide(state, f"promoting: waiting for the proxies to route to {canary} alone")
    tick.call_hooks("post-rollout")
    if tick.spec.load_generator is not None:
        tick.actions.append(StopLoad())
    reason = f"promoted: {canary} is the stable subset"
    if tick.spec.group is not None:
        released = ", ".join(f"{m.host} {m.canary_subset}" for m in tick.spec.group.members)
        reason = f"promoted together: {released} are the stable subsets"
    state = state.with_verified(tick.now)
    return tick.decide(state.with_phase(Phase.SUCCEEDED, reason, tick.now), reason)


def _rolling_back(tick: _Tick, state: CanaryState) -> Decision:
    if _verified(tick, state):
        reason = f"rolled back: {state.message.removesuffix(': rolling back')}"
        state = state.with_verified(tick.now)
        return tick.decide(state.with_phase(Phase.FAILED, reason, tick.now), reason)
    tick.actions.append(SetWeights(state.weights))
    return tick.decide(state, state.message)


_HANDLERS = {
    Phase.INITIALIZING: _initializing,
    Phase.PROGRESSING: _progressing,
    Phase.PAUSED: _paused,
    Phase.PROMOTING: _promoting,
    Phase.ROLLING_BACK: _rolling_back,
}


# --- steps ----------------------------------------------------------------------------------


def _run_step(tick: _Tick, state: CanaryState, step: Step) -> CanaryState | Decision:
    """The state once ``step`` is complete, or the decision to wait for it."""
    if step.kind in ("setWeight", "setMirror"):
        current = state.weights
        if step.kind == "setWeight":
            target = Weights(int(step.value), current.stable_subset, current.mirror, current.match)
        else:
            target = Weights(current.canary, current.stable_subset, step.value, current.match)
        if current != target:
            tick.call_hooks("rollout")
            return _set_weights(tick, state, target, f"step {_step_text(tick, state)}")
        if not _verified(tick, state):
            tick.actions.append(SetWeights(target))
            return tick.decide(state, f"waiting for the proxies to apply {target.describe()}")
        return state
    started = state.step_started_at or tick.now
    if step.kind == "pause":
        if step.duration is None:
            reason = f"step {_step_text(tick, state)}: waiting for rollout resume or promote"
            return tick.decide(state.with_phase(Phase.PAUSED, reason, tick.now), reason, True)
        if tick.now < started + step.duration:
            return tick.decide(state, f"step {_step_text(tick, state)}", wait=True)
        return state
    return _analysis_step(tick, state, step, started)


def _analysis_step(
    tick: _Tick, state: CanaryState, step: Step, started: datetime.datetime
) -> CanaryState | Decision:
    assert step.duration is not None  # analysis steps always have one (plan.py)
    verdict = worst(state.verdicts)
    holding = verdict is not None and verdict.phase is not VerdictPhase.SUCCESSFUL
    ends = started + step.duration
    judged = state.analysed_until is not None and state.analysed_until >= ends
    over = tick.now >= ends and (judged or tick.spec.skip_analysis)
    if tick.spec.adaptive():
        return _adaptive_step(tick, state, over)
    if over and state.passed_checks > 0 and not holding:
        return state
    if holding and verdict is not None:
        reason = f"step {_step_text(tick, state)} holding: {verdict.reason}"
    elif tick.now >= ends and not judged:
        reason = f"step {_step_text(tick, state)}: judging the windows up to its end"
    else:
        reason = f"step {_step_text(tick, state)}{_verdict_text(state)}"
    return tick.decide(state, reason, wait=True)


def _adaptive_step(tick: _Tick, state: CanaryState, over: bool) -> CanaryState | Decision:
    """Adaptive mode: the step's gate cleared ends it now; at its duration, evidence leaning
    towards the canary being fine ends it too; otherwise hold (the deadline bounds it)."""
    analyses = [i for i, step in enumerate(tick.plan) if step.kind == "analysis"]
    index = analyses.index(state.step) if state.step in analyses else len(analyses) - 1
    gates = planning.gates(len(analyses), tick.spec.analysis.power)
    gate = gates[min(index, len(gates) - 1)]
    last = index >= len(analyses) - 1
    cleared, progress = judging.gate_cleared(state, tick.spec, gate, last)
    if cleared:
        return state.with_message(
            f"step {_step_text(tick, state)}: gate cleared: {progress}", tick.now
        )
    if over and state.passed_checks > 0 and judging.leaning_fine(state, gate, last):
        return state
    verdict = worst(state.verdicts)
    holding = verdict is not None and verdict.phase is not VerdictPhase.SUCCESSFUL
    if (
        over
        and state.passed_checks > 0
        and not holding
        and judging.not_leaning_bad(state)
        and _held_half_the_deadline(tick, state)
    ):
        # Traffic too thin for the gate: holding on would only let the deadline roll back a
        # canary whose evidence leans its way, so the step ends as the fixed plan's would.
        return state.with_message(
            f"step {_step_text(tick, state)}: undecided after half the progress deadline"
            f" ({progress or 'no evidence yet'}), no metric against the canary and the evidence"
            " leaning its way: moving on as the fixed plan would",
            tick.now,
        )
    if holding and verdict is not None:
        reason = f"step {_step_text(tick, state)} holding: {verdict.reason}"
    else:
        reason = f"step {_step_text(tick, state)}, adaptive: {progress or 'no evidence yet'}"
    return tick.decide(state, reason, wait=True)


def _set_weights(tick: _Tick, state: CanaryState, target: Weights, why: str) -> Decision:
    tick.actions.append(SetWeights(target))
    return tick.decide(state.with_weights(target), f"{why}: setting {target.describe()}")


def _verified(tick: _Tick, state: CanaryState) -> bool:
    return state.verified_at is not None or tick.observation.weights_verified


# --- baseline and plan ---------------------------------------------------------------------


def _with_baseline(tick: _Tick, state: CanaryState, baseline: Baseline) -> CanaryState:
    """Start the tests from the stable's history and say what the plan can see."""
    spec = tick.spec
    tests = judging.start_tests(spec, baseline)
    rps = baseline.rps + (spec.load_generator.rps if spec.load_generator is not None else 0.0)
    # A release group's parts all see the slice's requests: the plan is the ingress's.
    planned = [t for key, t in tests if "/" not in key or key.startswith(f"{INGRESS_SCOPE}/")]
    metrics = [_metric_plan(spec, test) for test in planned]
    assessment = planning.assess(
        _segments(tick.plan),
        rps,
        metrics,
        power=spec.analysis.power,
        min_requests=spec.analysis.min_requests,
        adaptive=spec.adaptive(),
    )
    state = state.with_baseline(baseline, assessment, tests)
    state = state.with_phase(state.phase, f"plan: {baseline.describe()}", tick.now)
    for warning in assessment.warnings:
        state = state.with_phase(state.phase, f"plan warning: {warning}", tick.now)
    return state


def _metric_plan(spec: Canary, test: MetricTest) -> planning.MetricPlan:
    ev = test.evidence
    rate = ev.prior.bad / ev.prior.requests
    if test.metric == LATENCY and test.slow is None:
        rate = 0.01  # not learnt yet: about the share above a p99
    tolerance = ev.tolerance
    alpha = judging.sequential_alpha(spec, test.metric)
    return planning.MetricPlan(test.metric, rate, tolerance, test.effect, test.effect_size, alpha)


def _segments(plan: tuple[Step, ...]) -> list[planning.Segment]:
    """The plan as stretches of time at a weight (a pause without duration ends it)."""
    weight, analysis, out = 0.0, 0, []
    for step in plan:
        if step.kind == "setWeight":
            weight = step.value
        elif step.kind == "setMirror":
            weight = max(weight, step.value)
        elif step.duration is None:
            break
        elif step.kind == "analysis":
            analysis += 1
            out.append(planning.Segment(weight, step.duration.total_seconds(), analysis))
        else:
            out.append(planning.Segment(weight, step.duration.total_seconds()))
    return out


# --- judging, deadline, rollback -------------------------------------------------------------


def _judge(tick: _Tick, state: CanaryState) -> CanaryState | Decision:
    """Judge the new windows and the rollout webhooks' answers; a Decision means roll back."""
    if state.verified_at is None and tick.observation.weights_verified:
        state = state.with_verified(tick.now)
    limit = tick.spec.analysis.failure_limit
    rollout_hooks = tick.hooks("rollout")
    for answer in tick.observation.webhooks:
        if answer.name in rollout_hooks and not answer.ok:
            state = state.with_failed_check()
            if state.failed_checks >= limit:
                counts = f"failed checks {state.failed_checks} >= failureLimit {limit}"
                reason = f"rollout webhook {answer.name} failed: {answer.detail} ({counts})"
                return _rollback(tick, state, f"{reason}: rolling back")
    judged = judging.judge_windows(state, tick.spec, tick.observation.windows)
    if judged.discarded:
        tick.note = (
            f" ({judged.discarded} window(s) not judged: measured before the weights applied)"
        )
    if judged.rollback is not None:
        return _rollback(tick, judged.state, judged.rollback)
    return judged.state


def _held_half_the_deadline(tick: _Tick, state: CanaryState) -> bool:
    since = state.progress_at or state.started_at
    return tick.now - since >= tick.spec.deadline() / 2


def _past_deadline(tick: _Tick, state: CanaryState) -> bool:
    since = state.progress_at or state.started_at
    return tick.now - since > tick.spec.deadline()


def _deadline_reason(tick: _Tick, state: CanaryState) -> str:
    since = state.progress_at or state.started_at
    waited = int((tick.now - since).total_seconds())
    limit = int(tick.spec.deadline().total_seconds())
    return (
        f"no progress for {waited}s (progressDeadline {limit}s) at step "
        f"{_step_text(tick, state)}, last: {state.message}: rolling back"
    )


def _start_rollback(tick: _Tick, state: CanaryState, reason: str) -> CanaryState:
    """Every request to the stable in this very decision, then wait for the proxies."""
    stable = Weights(0, state.weights.stable_subset)
    if state.phase is Phase.PROMOTING and state.promotion_stage == 1:
        stable = state.weights  # the canary already is the stable: nothing to undo
    tick.actions.append(SetWeights(stable))
    tick.call_hooks("rollback")
    if tick.spec.load_generator is not None:
        tick.actions.append(StopLoad())
    return state.with_weights(stable).with_phase(Phase.ROLLING_BACK, reason, tick.now)


def _rollback(tick: _Tick, state: CanaryState, reason: str) -> Decision:
    return tick.decide(_start_rollback(tick, state, reason), reason)


def _step_text(tick: _Tick, state: CanaryState) -> str:
    if state.step >= len(tick.plan):
        return f"{len(tick.plan)}/{len(tick.plan)} (done)"
    return f"{state.step + 1}/{len(tick.plan)} ({tick.plan[state.step].describe()})"


def _verdict_text(state: CanaryState) -> str:
    verdict = worst(state.verdicts)
    return f"; last: {verdict.reason}" if verdict is not None else ""
