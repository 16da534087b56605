"""The supervised processes of one pod: its sidecar Envoy and its app container.

Called by :mod:`canarymesh.runtime.local.pod_lifecycle` when a pod starts. Pure apart from
reading the interpreter's path: a :class:`~canarymesh.runtime.local.pods.PodPlan`, the pod's
:class:`~canarymesh.mesh.model.ProxyNode` and where the pod lives become
:class:`~canarymesh.runtime.local.supervisor.ProcessSpec` s.

The kubelet's probes are translated as it runs them: ``httpGet`` (path, port by number or name,
host, headers; any 2xx/3xx passes), ``tcpSocket`` and ``exec`` (in the container, as its user),
with their timing fields. They run inside the pod's network namespace, straight to the app (as
Istio's probe rewrite does), so the capture and mTLS do not apply to them. A container without
a readiness probe is ready once its first port accepts a connection, so that ``apply --wait``
means "serving", not merely "started" (the kubelet would call it ready at once).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from canarymesh.api import kube
from canarymesh.errors import ConfigError
from canarymesh.mesh.model import ProxyNode
from canarymesh.runtime.local.catalog import MariaDbRecipe, MongoRecipe, PythonService
from canarymesh.runtime.local.pods import PodPlan, app_env
from canarymesh.runtime.local.sandbox import app_launcher
from canarymesh.runtime.local.supervisor import (
    ExecProbe,
    HttpProbe,
    Probe,
    ProbeTiming,
    ProcessSpec,
    TcpProbe,
)

__all__ = ["PodPlace", "app_spec", "container_probe"]

SIDECAR = "istio-proxy"


@dataclass(frozen=True, slots=True)
class PodPlace:
    """Where a pod runs: its network namespace (name and file; None on the shared network),
    its log directory and its own scratch directory (the default working directory)."""

    netns: str | None
    netns_path: str | None
    log_dir: Path
    pod_dir: Path


def log_path(place: PodPlace, plan_or_id: PodPlan | str, container: str) -> Path:
    proxy_id = plan_or_id if isinstance(plan_or_id, str) else plan_or_id.proxy_id
    return place.log_dir / f"{proxy_id}.{container}.log"


def _timing(probe: kube.Probe, default_period: float = 10.0) -> ProbeTiming:
    return ProbeTiming(
        initial_delay=float(probe.initial_delay_seconds or 0),
        period=float(probe.period_seconds or default_period),
        timeout=float(probe.timeout_seconds or 1),
        success_threshold=int(probe.success_threshold or 1),
        failure_threshold=int(probe.failure_threshold or 3),
    )


def _port(value: object, plan: PodPlan, field: str) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.isdigit():
        return int(text)
    named = dict(plan.port_names).get(text)
    if named is None:
        raise ConfigError(
            f"pod {plan.namespace}/{plan.name}: {field} port {text!r} names no containerPort"
        )
    return named


def container_probe(
    probe: kube.Probe,
    plan: PodPlan,
    local_port: Callable[[int], int],
    host: str,
    netns: str | None,
    field: str,
) -> tuple[Probe, ProbeTiming]:
    """A Kubernetes probe as the supervisor runs it; ``local_port`` maps a container port to
    where the app really listens (itself in a pod network)."""
    timing = _timing(probe)
    if probe.exec is not None:
        command = probe.exec.get("command")
        if not isinstance(command, list) or not command:
            raise ConfigError(f"pod {plan.namespace}/{plan.name}: {field}.exec has no command")
        return ExecProbe(tuple(str(c) for c in command)), timing
    if probe.http_get is not None:
        get = probe.http_get
        port = local_port(_port(get.get("port"), plan, f"{field}.httpGet"))
        target = str(get.get("host") or host)
        if str(get.get("scheme") or "HTTP").upper() == "HTTPS":
            # No TLS client in the prober: the port accepting a connection is what we check.
            return TcpProbe(port, target, netns), timing
        headers = get.get("httpHeaders")
        pairs = tuple(
            (str(h.get("name")), str(h.get("value")))
            for h in (headers if isinstance(headers, list) else [])
            if isinstance(h, dict)
        )
        path = str(get.get("path") or "/")
        url = f"http://{target}:{port}{path if path.startswith('/') else '/' + path}"
        return HttpProbe(url, netns=netns, any_success=True, headers=pairs), timing
    if probe.tcp_socket is not None:
        port = local_port(_port(probe.tcp_socket.get("port"), plan, f"{field}.tcpSocket"))
        return TcpProbe(port, str(probe.tcp_socket.get("host") or host), netns), timing
    raise ConfigError(f"pod {plan.namespace}/{plan.name}: {field} needs httpGet, tcpSocket or exec")


def app_spec(
    plan: PodPlan,
    proxy: ProxyNode,
    place: PodPlace,
    base_env: Mapping[str, str],
    backoff: float,
) -> ProcessSpec:
    """The app container of ``plan`` as a supervised process."""
    recipe = plan.recipe
    if isinstance(recipe, MariaDbRecipe):
        raise ConfigError(f"pod {plan.name}: a MariaDB image is started by runtime.local.databases")
    if isinstance(recipe, MongoRecipe) and not plan.command:
        raise ConfigError(
            f"pod {plan.name}: MongoDB images do not run on the local mesh (no mongod);"
            " use bookinfo-mysql.yaml and bookinfo-ratings-v2-mysql.yaml for a database"
        )
    pod_network = proxy.network is not None

    def local_port(container_port: int) -> int:
        return proxy.ports.app_port(container_port) or container_port

    host = proxy.ip or "127.0.0.1"
    env = app_env(plan, proxy, base_env)
    launcher = app_launcher(place.netns, plan.run_as)
    cwd: Path | None = Path(plan.working_dir) if plan.working_dir else None
    if plan.command:
        argv = list(plan.command)
        cwd = cwd or place.pod_dir
    else:
        assert isinstance(recipe, PythonService)
        if plan.container_port is None:
            raise ConfigError(f"pod {plan.name}: its container declares no port")
        argv = recipe.argv(
            sys.executable,
            local_port(plan.container_port),
            "0.0.0.0" if pod_network else "127.0.0.1",
        )
    readiness: Probe | None = None
    timing: ProbeTiming | None = None
    if plan.readiness is not None:
        readiness, timing = container_probe(
            plan.readiness, plan, local_port, host, place.netns_path, "readinessProbe"
        )
    elif plan.container_port is not None:
        readiness = TcpProbe(local_port(plan.container_port), host, place.netns_path)
    spec = ProcessSpec(
        name=f"{plan.proxy_id}.{plan.container}",
        argv=argv,
        log_path=log_path(place, plan, plan.container),
        env=env,
        cwd=cwd,
        probe=readiness,
        readiness=timing,
        launcher=launcher,
        detached=True,
        backoff_initial=backoff,
        backoff_max=10.0,
        stop_grace=3.0,
    )
    if plan.liveness is not None:
        liveness, liveness_timing = container_probe(
            plan.liveness, plan, local_port, host, place.netns_path, "livenessProbe"
        )
        spec = replace(spec, liveness=liveness, liveness_timing=liveness_timing)
    return spec
