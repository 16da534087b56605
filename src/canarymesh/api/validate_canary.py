"""Validation of our ``Canary`` kind: every rule the rollout relies on, with field paths. Pure;
called by :mod:`canarymesh.api.validate` for each Canary resource (and so by ``canarymesh
validate``, ``analyze`` and ``apply``). Never raises, reports every problem.

Codes: CM0603 steps (weights 0..100, ascending), CM0604 strategy shape, CM0605 analysis
(judge, alpha, limits, metrics, query templates), CM0606 target, CM0607 timing (a step longer
than the progress deadline), CM0608 webhooks and the load generator, CM0609 a config canary's
changed documents, CM0610 notifications (:mod:`canarymesh.api.validate_notifications`), CM0612
a release group (spec.group); CM0107 bad durations.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from canarymesh.api.canary import (
    BUILTIN_METRICS,
    Canary,
    CanaryStep,
    MetricCheck,
    template_variables,
)
from canarymesh.api.durations import parse_duration
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter
from canarymesh.api.validate_common import (
    check_duration,
    check_host,
    check_port,
    check_string_matches,
)
from canarymesh.api.validate_config_canary import check_config
from canarymesh.api.validate_notifications import validate_notifications

__all__ = ["MAX_ALPHA", "QUERY_VARIABLES", "validate_canary"]

_COOKIE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

SPEC: FieldPath = ("spec",)
# Above 0.2 the "false alarm rate" stops meaning anything a user would accept.
MAX_ALPHA = 0.2
# What the controller can fill in when it renders a custom query (analysis/queries.py).
QUERY_VARIABLES = frozenset({"namespace", "host", "version", "interval"})


def validate_canary(report: Reporter, spec: Canary) -> None:
    _check_target(report, spec)
    if spec.group is not None:
        _check_group(report, spec)
    _check_strategy(report, spec)
    _check_analysis(report, spec)
    _check_hooks(report, spec)
    check_duration(report, (*SPEC, "progressDeadline"), spec.progress_deadline)
    _check_timing(report, spec)
    validate_notifications(report, (*SPEC, "notifications"), spec.notifications)


def _check_target(report: Reporter, spec: Canary) -> None:
    target, path = spec.target, (*SPEC, "target")
    check_host(report, (*path, "host"), target.host, allow_star=False)
    check_port(report, (*path, "port"), target.port)
    if spec.config is not None:
        check_config(report, spec)
        return
    if not target.virtual_service:
        report("CM0606", (*path, "virtualService"), problem="virtualService is required")
    if spec.group is not None:
        return  # the ingress: its subsets are the group's slices (_check_group)
    subsets = target.stable_subset is not None or target.canary_subset is not None
    if subsets and target.deployments is not None:
        report("CM0606", path, problem="set stableSubset/canarySubset or deployments, not both")
    elif not subsets and target.deployments is None:
        report("CM0606", path, problem="set stableSubset and canarySubset (or deployments)")
    elif subsets and (target.stable_subset is None or target.canary_subset is None):
        missing = "stableSubset" if target.stable_subset is None else "canarySubset"
        report("CM0606", (*path, missing), problem=f"{missing} is required with the other")
    elif spec.stable_subset() == spec.canary_subset():
        report("CM0606", path, problem=f"stable and canary are both {spec.stable_subset()}")
    if len(set(target.routes)) != len(target.routes):
        report("CM0606", (*path, "routes"), list(target.routes), problem="a route is named twice")
    revisions = target.revisions
    if revisions is not None:
        if target.stable_subset is None or target.canary_subset is None:
            problem = "revisions need stableSubset and canarySubset"
            report("CM0606", (*path, "revisions"), problem=problem)
        if revisions.stable_hash == revisions.canary_hash:
            problem = f"stable and canary are both revision {revisions.stable_hash}"
            report("CM0606", (*path, "revisions"), problem=problem)


def _check_group(report: Reporter, spec: Canary) -> None:
    """A release group: the target is the ingress, each member a service with two subsets."""
    assert spec.group is not None
    group, path, target = spec.group, (*SPEC, "group"), spec.target
    if target.stable_subset or target.canary_subset or target.deployments is not None:
        report(
            "CM0612",
            (*SPEC, "target"),
            problem="with spec.group the target is the ingress: name each member's subsets "
            "in spec.group.members, not stableSubset/canarySubset/deployments here",
        )
    if spec.config is not None:
        report(
            "CM0612", (*SPEC, "config"), problem="a release group cannot also be a config canary"
        )
    strategy = spec.strategy
    for field, block in (("blueGreen", strategy.blue_green), ("mirror", strategy.mirror),
                         ("sessionAffinity", strategy.session_affinity)):  # fmt: skip
        if block is not None:
            report(
                "CM0612",
                (*SPEC, "strategy", field),
                problem=f"a release group takes canary steps only ({field} is not supported; "
                "its sessions stay in the slice through spec.group.cookieName)",
            )
    if strategy.canary is not None and strategy.canary.match:
        report("CM0612", (*SPEC, "strategy", "canary", "match"),
               problem="a release group assigns sessions by weight; no match")  # fmt: skip
    for index, check in enumerate(spec.analysis.metrics):
        if check.query is not None or check.name not in BUILTIN_METRICS:
            report(
                "CM0612",
                (*SPEC, "analysis", "metrics", index),
                check.name,
                problem="a release group is judged per member and at the ingress with the "
                f"built-in metrics only ({', '.join(BUILTIN_METRICS)})",
            )
    if group.cookie_name is not None and not _COOKIE_NAME.fullmatch(group.cookie_name):
        report("CM0612", (*path, "cookieName"), group.cookie_name,
               problem="a cookie name of letters, digits, - and _ (at most 64)")  # fmt: skip
    check_duration(report, (*path, "maxAge"), group.max_age)
    if not group.members:
        report("CM0612", (*path, "members"), problem="name at least one member service")
    hosts: dict[str, int] = {}
    services: dict[str, int] = {}
    ingress = target.host.split(".", 1)[0]
    for index, member in enumerate(group.members):
        where = (*path, "members", index)
        check_host(report, (*where, "host"), member.host, allow_star=False)
        check_port(report, (*where, "port"), member.port)
        short = member.host.split(".", 1)[0]
        if short in hosts:
            report("CM0612", (*where, "host"), member.host,
                   problem=f"members[{hosts[short]}] names the same service")  # fmt: skip
        hosts.setdefault(short, index)
        if short == ingress:
            report("CM0612", (*where, "host"), member.host,
                   problem="the ingress's target host cannot also be a member")  # fmt: skip
        if not member.virtual_service:
            report("CM0612", (*where, "virtualService"), problem="virtualService is required")
        elif member.virtual_service == target.virtual_service:
            report("CM0612", (*where, "virtualService"), member.virtual_service,
                   problem="the ingress's VirtualService cannot also be a member's")  # fmt: skip
        elif member.virtual_service in services:
            report("CM0612", (*where, "virtualService"), member.virtual_service,
                   problem=f"members[{services[member.virtual_service]}] routes through the "
                   "same VirtualService; give each member its own")  # fmt: skip
        services.setdefault(member.virtual_service, index)
        if member.stable_subset == member.canary_subset:
            report("CM0612", (*where, "canarySubset"), member.canary_subset,
                   problem=f"stable and canary are both {member.stable_subset}")  # fmt: skip
        if len(set(member.routes)) != len(member.routes):
            report("CM0612", (*where, "routes"), list(member.routes),
                   problem="a route is named twice")  # fmt: skip


def _check_strategy(report: Reporter, spec: Canary) -> None:
    strategy, path = spec.strategy, (*SPEC, "strategy")
    blocks = (
        ("canary", strategy.canary),
        ("blueGreen", strategy.blue_green),
        ("mirror", strategy.mirror),
    )
    chosen = [name for name, block in blocks if block is not None]
    if len(chosen) > 1:
        report(
            "CM0604",
            path,
            problem=f"choose one of canary, blueGreen, mirror (found {' and '.join(chosen)})",
        )
    if strategy.mirror is not None:
        value = strategy.mirror.percentage
        if not 0 < value <= 100:
            report("CM0103", (*path, "mirror", "percentage"), value, expected="in (0, 100]")
        check_duration(
            report, (*path, "mirror", "analysisDuration"), strategy.mirror.analysis_duration
        )
    if strategy.blue_green is not None:
        check_duration(
            report, (*path, "blueGreen", "analysisDuration"), strategy.blue_green.analysis_duration
        )
        for index, match in enumerate(strategy.blue_green.match):
            check_string_matches(
                report, (*path, "blueGreen", "match", index, "headers"), match.headers
            )
    if strategy.session_affinity is not None:
        affinity = strategy.session_affinity
        if not affinity.cookie_name:
            report("CM0112", (*path, "sessionAffinity", "cookieName"), "")
        check_duration(report, (*path, "sessionAffinity", "maxAge"), affinity.max_age)
    if strategy.canary is not None:
        _check_ramp(report, spec, (*path, "canary"))


def _check_ramp(report: Reporter, spec: Canary, path: FieldPath) -> None:
    ramp = spec.strategy.canary
    assert ramp is not None  # checked by the caller
    for index, match in enumerate(ramp.match):
        check_string_matches(report, (*path, "match", index, "headers"), match.headers)
    if ramp.steps and (ramp.step_weight is not None or ramp.max_weight is not None):
        report("CM0604", path, problem="use steps or stepWeight/maxWeight, not both")
    if ramp.max_weight is not None and ramp.step_weight is None:
        report(
            "CM0604", (*path, "maxWeight"), ramp.max_weight, problem="maxWeight needs stepWeight"
        )
    for name, value in (("stepWeight", ramp.step_weight), ("maxWeight", ramp.max_weight)):
        if value is not None and not 1 <= value <= 100:
            report("CM0103", (*path, name), value, expected="between 1 and 100")
    step, top = ramp.step_weight, ramp.max_weight
    if step is not None and top is not None and 1 <= top < step:
        problem = f"maxWeight {top} is below stepWeight {step}: the ramp would have no step"
        report("CM0604", (*path, "maxWeight"), top, problem=problem)
    _check_steps(report, ramp.steps, (*path, "steps"))


def _check_steps(report: Reporter, steps: tuple[CanaryStep, ...], path: FieldPath) -> None:
    previous = -1
    for index, step in enumerate(steps):
        here = (*path, index)
        kinds = [
            k
            for k, v in (
                ("setWeight", step.set_weight),
                ("pause", step.pause),
                ("analysis", step.analysis),
            )
            if v is not None
        ]
        if len(kinds) != 1:
            found = " and ".join(kinds) or "nothing"
            report(
                "CM0604",
                here,
                problem=f"a step sets exactly one of setWeight, pause, analysis (found {found})",
            )
        if step.set_weight is not None:
            weight = step.set_weight
            if not 0 <= weight <= 100:
                report("CM0103", (*here, "setWeight"), weight, expected="between 0 and 100")
            elif weight <= previous:
                problem = f"weights must increase; an earlier step sets {previous}"
                report("CM0603", (*here, "setWeight"), weight, problem=problem)
            else:
                previous = weight
        if step.pause is not None:
            check_duration(report, (*here, "pause", "duration"), step.pause.duration)
        if step.analysis is not None:
            check_duration(report, (*here, "analysis", "duration"), step.analysis.duration)


def _check_analysis(report: Reporter, spec: Canary) -> None:
    analysis, path = spec.analysis, (*SPEC, "analysis")
    check_duration(report, (*path, "interval"), analysis.interval)
    if not 0 < analysis.alpha <= MAX_ALPHA:
        report(
            "CM0605",
            (*path, "alpha"),
            analysis.alpha,
            problem=f"alpha is a false-alarm rate in (0, {MAX_ALPHA}]",
        )
    if not 0.5 <= analysis.power < 1.0:
        report(
            "CM0605",
            (*path, "power"),
            analysis.power,
            problem="power is the chance of catching an effectSize regression, in [0.5, 1)",
        )
    check_duration(report, (*path, "history"), analysis.history, allow_zero=True)
    ramp = spec.strategy.canary
    if ramp is not None and ramp.adaptive and analysis.judge != "statistical":
        report("CM0604", (*SPEC, "strategy", "canary", "adaptive"), True,
               problem="adaptive mode needs the statistical judge")  # fmt: skip
    if analysis.failure_limit < 1:
        report("CM0103", (*path, "failureLimit"), analysis.failure_limit, expected="1 or more")
    if analysis.min_requests < 1:
        report("CM0103", (*path, "minRequests"), analysis.min_requests, expected="1 or more")
    seen: set[str] = set()
    for index, check in enumerate(analysis.metrics):
        _check_metric(report, spec, check, (*path, "metrics", index), seen)


def _check_metric(
    report: Reporter, spec: Canary, check: MetricCheck, path: FieldPath, seen: set[str]
) -> None:
    if check.name in seen:
        report("CM0605", (*path, "name"), check.name, problem="a metric is named twice")
    seen.add(check.name)
    if check.query is None and check.name not in BUILTIN_METRICS:
        report(
            "CM0605",
            (*path, "name"),
            check.name,
            problem="not a built-in metric ("
            f"{', '.join(BUILTIN_METRICS)}); a custom metric needs a query",
        )
    if check.query is not None:
        unknown = [v for v in template_variables(check.query) if v not in QUERY_VARIABLES]
        if unknown:
            known = ", ".join(sorted(QUERY_VARIABLES))
            problem = f"unknown template variable {', '.join(unknown)} (known: {known})"
            report("CM0605", (*path, "query"), check.query, problem=problem)
    if check.tolerance is not None and not 1.0 <= check.tolerance <= 100.0:
        report("CM0103", (*path, "tolerance"), check.tolerance, expected="between 1 and 100")
    if check.effect_size is not None:
        if not 1.0 < check.effect_size <= 1000.0:
            report("CM0103", (*path, "effectSize"), check.effect_size, expected="in (1, 1000]")
        elif check.tolerance is not None and check.effect_size <= check.tolerance:
            problem = (
                f"effectSize {check.effect_size:g} must be above tolerance "
                f"{check.tolerance:g}: a regression within the tolerance is no regression"
            )
            report("CM0605", (*path, "effectSize"), check.effect_size, problem=problem)
    if (check.tolerance is not None or check.effect_size is not None) and (
        check.query is not None or spec.analysis.judge != "statistical"
    ):
        problem = "tolerance and effectSize apply to the statistical judge's built-in metrics"
        report("CM0605", path, problem=problem)
    bounds = check.threshold_range
    if bounds is not None and None not in (bounds.min, bounds.max):
        assert bounds.min is not None and bounds.max is not None
        if bounds.min > bounds.max:
            report(
                "CM0605",
                (*path, "thresholdRange"),
                problem=f"min {bounds.min:g} is above max {bounds.max:g}",
            )
    needs_range = spec.analysis.judge == "threshold" or check.query is not None
    if needs_range and (bounds is None or (bounds.min is None and bounds.max is None)):
        report(
            "CM0605",
            path,
            problem=f"metric {check.name} is judged by thresholds and needs "
            "thresholdRange min or max",
        )


def _check_hooks(report: Reporter, spec: Canary) -> None:
    names: set[str] = set()
    for index, hook in enumerate(spec.webhooks):
        path = (*SPEC, "webhooks", index)
        if hook.name in names:
            report("CM0608", (*path, "name"), hook.name, problem="a webhook is named twice")
        names.add(hook.name)
        if not _is_http_url(hook.url):
            report("CM0608", (*path, "url"), hook.url, problem="must be an http or https URL")
        check_duration(report, (*path, "timeout"), hook.timeout)
    generator = spec.load_generator
    if generator is not None:
        if not _is_http_url(generator.url):
            report(
                "CM0608",
                (*SPEC, "loadGenerator", "url"),
                generator.url,
                problem="must be an http or https URL",
            )
        if not 0 < generator.rps <= 10_000:
            report(
                "CM0103", (*SPEC, "loadGenerator", "rps"), generator.rps, expected="in (0, 10000]"
            )


def _check_timing(report: Reporter, spec: Canary) -> None:
    deadline = parse_duration(spec.progress_deadline)
    if deadline is None:
        return
    ramp = spec.strategy.canary
    for index, step in enumerate(ramp.steps if ramp else ()):
        inner = step.pause or step.analysis
        length = parse_duration(inner.duration) if inner and inner.duration else None
        if length is not None and length >= deadline:
            kind = "pause" if step.pause else "analysis"
            path = (*SPEC, "strategy", "canary", "steps", index, kind, "duration")
            report(
                "CM0607",
                path,
                inner.duration if inner else None,
                problem=f"not shorter "
                f"than progressDeadline {spec.progress_deadline}: the rollout would roll "
                "back before the step ends",
            )


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)
