"""What ``get pods``, ``describe pod``, ``logs`` and ``status`` show of the running proxies.

Read-only views over the pod runner and the supervisor, computed on request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from canarymesh.errors import ConfigError
from canarymesh.runtime.local.pod_lifecycle import PodRunner, Running, sidecar_name
from canarymesh.runtime.local.pod_processes import SIDECAR
from canarymesh.runtime.local.supervisor import ChildStatus, Phase

__all__ = ["child_json", "container_statuses", "find_pod", "gateway_rows", "pod_phase", "pod_rows"]


def app_status(runner: PodRunner, name: str) -> ChildStatus:
    """A child's status; one not started yet (its pod's network or a database's data directory
    is being made) is Starting, not ready."""
    if runner.started(name):
        return runner.supervisor.child_status(name)
    return ChildStatus(name, None, Phase.STARTING, False, 0, None, None)


def container_statuses(runner: PodRunner, running: Running) -> dict[str, ChildStatus]:
    """The pod's containers by name: the app's (first) and ``istio-proxy``."""
    found: dict[str, ChildStatus] = {}
    if running.app is not None and running.plan is not None:
        found[running.plan.container] = app_status(runner, running.app)
    found[SIDECAR] = app_status(runner, sidecar_name(running.proxy.id))
    return found


def pod_rows(runner: PodRunner) -> list[dict[str, object]]:
    """Each pod's state as ``get pods`` shows it."""
    rows = []
    now = time.time()
    for _, running in sorted(runner.running.items()):
        plan = running.plan
        if plan is None:
            continue
        children = list(container_statuses(runner, running).values())
        proxy = running.proxy
        rows.append(
            {
                "name": plan.name,
                "namespace": plan.namespace,
                "deployment": plan.deployment,
                "ready": f"{sum(c.ready for c in children)}/{len(children)}",
                "status": pod_phase(children),
                "restarts": sum(c.restarts for c in children),
                "age": now - running.created,
                "ip": proxy.ip,
                "node": "local",
                "netns": running.place.netns,
                "containers": [child_json(c) for c in children],
                "warnings": list(running.warnings),
                "labels": dict(proxy.labels),
                "service_account": proxy.service_account,
                "ports": {
                    "admin": proxy.ports.admin,
                    "outbound_http": proxy.ports.outbound_http,
                    "inbound": dict(proxy.ports.inbound),
                    "app": dict(proxy.ports.app),
                },
            }
        )
    return rows


def gateway_rows(runner: PodRunner) -> list[dict[str, object]]:
    rows = []
    for _, running in sorted(runner.running.items()):
        if running.plan is not None:
            continue
        status = app_status(runner, sidecar_name(running.proxy.id))
        rows.append(
            {
                "name": running.proxy.id,
                "namespace": running.proxy.namespace,
                "ports": {str(k): v for k, v in running.proxy.ports.gateway},
                "admin": running.proxy.ports.admin,
                "ip": running.proxy.ip,
                **child_json(status),
            }
        )
    return rows


def find_pod(runner: PodRunner, pod: str, namespace: str | None = None) -> Running:
    """A pod or gateway by name (``name``, ``name.namespace`` or the proxy id)."""
    if pod in runner.running:
        return runner.running[pod]
    name, _, qualified = pod.rpartition(".")
    if name and f"{name}.{qualified}" in runner.running and namespace in (None, qualified):
        return runner.running[f"{name}.{qualified}"]
    matches = [
        r
        for r in runner.running.values()
        if (r.plan.name if r.plan else r.proxy.id) == pod
        and (namespace is None or r.proxy.namespace == namespace)
    ]
    if len(matches) == 1:
        return matches[0]
    in_default = [r for r in matches if r.proxy.namespace == "default"]
    if namespace is None and len(in_default) == 1:
        return in_default[0]  # kubectl's default namespace
    if matches:
        spaces = ", ".join(sorted(r.proxy.namespace for r in matches))
        raise ConfigError(f"pod {pod!r} is in several namespaces ({spaces}): pass -n NAMESPACE")
    known = ", ".join(sorted(runner.running)) or "none"
    where = f" in namespace {namespace}" if namespace else ""
    raise ConfigError(f"no pod or gateway named {pod!r}{where} (known: {known})")


def pod_phase(children: Sequence[ChildStatus]) -> str:
    phases = [c.phase for c in children]
    if Phase.BACKOFF in phases:
        return "CrashLoopBackOff"
    if Phase.FAILED in phases:
        return "Error"
    if any(p in (Phase.STOPPED, Phase.COMPLETED) for p in phases):
        return "Terminating"
    # As kubectl: Running once every process runs, ready or not (READY says which are).
    if all(c.pid is not None for c in children):
        return "Running"
    return "ContainerCreating"


def child_json(status: ChildStatus) -> dict[str, object]:
    return {
        "name": status.name,
        "pid": status.pid,
        "phase": status.phase.value,
        "ready": status.ready,
        "restarts": status.restarts,
        "last_exit_code": status.last_exit_code,
        "error": status.error,
    }
