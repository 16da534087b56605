"""Validation of a config canary (a ``Canary`` with ``spec.config``): CM0609. Pure.

Two halves, because a changed document is a whole Istio object of its own: what can be said of
the Canary alone (the target, the strategy, each document's kind) is checked here through
:func:`check_config`, called by :mod:`canarymesh.api.validate_canary`; each document is then
loaded by :mod:`canarymesh.api.loader` like any other object, and what only its typed spec
tells (:func:`config_spec_problems`) is asked of this module with the result. The loader sits
above validation, so validation never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel

from canarymesh.api.canary import Canary
from canarymesh.api.istio_networking import DestinationRule, VirtualService
from canarymesh.api.objects import FieldPath
from canarymesh.api.reporter import Reporter

__all__ = [
    "CONFIG_KINDS",
    "RESOURCES",
    "check_config",
    "config_kind_problem",
    "config_spec_problems",
]

CONFIG_KINDS = ("VirtualService", "DestinationRule", "AuthorizationPolicy")
RESOURCES: FieldPath = ("spec", "config", "resources")
_GROUPS = ("networking.istio.io/", "security.istio.io/")


def config_kind_problem(resource: Mapping[str, object]) -> str | None:
    """Why a changed document's kind cannot be a config canary's (None: it can)."""
    kind, api = resource.get("kind"), str(resource.get("apiVersion", ""))
    if kind in CONFIG_KINDS and api.startswith(_GROUPS):
        return None
    return f"{kind} ({api}): a config canary changes Istio's {', '.join(CONFIG_KINDS)} only"


def config_spec_problems(spec: BaseModel, host: str) -> list[str]:
    """Why a loaded changed document cannot apply to the canary's target ``host`` (none: it can)."""
    problems = []
    short = host.split(".", 1)[0]
    if isinstance(spec, VirtualService):
        if "mesh" not in (spec.gateways or ("mesh",)):
            problems.append(
                "gateways: bind the changed rules to mesh (sidecars take a config canary)"
            )
        if not any(h in (host, short) or host.startswith(f"{h}.") for h in spec.hosts):
            problems.append(f"hosts: none is the target host {host}")
    elif isinstance(spec, DestinationRule):
        if spec.host not in (host, short) and not host.startswith(f"{spec.host}."):
            problems.append(f"host: {spec.host} is not the target host {host}")
        if spec.workload_selector is not None:
            problems.append("workloadSelector: the config canary selects the workloads itself")
    return problems


def check_config(report: Reporter, spec: Canary) -> None:
    """What the Canary alone says of its config canary: target, strategy, document kinds."""
    target = spec.target
    if target.stable_subset or target.canary_subset or target.deployments is not None:
        report(
            "CM0609",
            ("spec", "target"),
            problem="a config canary moves clients between configs, not subsets or deployments",
        )
    if spec.strategy.blue_green is not None or spec.strategy.mirror is not None:
        report("CM0609", ("spec", "strategy"), problem="a config canary takes canary steps only")
    resources = spec.config.resources if spec.config is not None else ()
    if not resources:
        report("CM0609", RESOURCES, problem="name at least one changed document")
    for index, resource in enumerate(resources):
        problem = config_kind_problem(resource)
        if problem is not None:
            report("CM0609", (*RESOURCES, index), problem=problem)
