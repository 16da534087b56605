"""Starting and stopping pods and gateways: their network, their sidecar and their app.

Called by :mod:`canarymesh.runtime.local.reconcile` for the proxies a change adds or removes.
A pod starts the way a kubelet with a CNI and Istio's injector starts it: its network
namespace first (:mod:`~canarymesh.runtime.local.podnet`, capture rules included), then the
sidecar Envoy and the app side by side; the app's first calls wait for nothing, since the
kubelet restarts it if it gives up. A database pod's data directory takes a second or two, so
it is prepared in a task and the apply does not wait for it. Stopping is the reverse: the app,
then the sidecar, then the namespace (its veth goes with it).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from canarymesh.mesh.capture import PROXY_GID, PROXY_UID
from canarymesh.mesh.model import MeshSettings, ProxyNode
from canarymesh.runtime.local.catalog import MariaDbRecipe, PythonService
from canarymesh.runtime.local.databases import prepare_mariadb, remove_workdir
from canarymesh.runtime.local.envoy import envoy_spec, write_bootstrap
from canarymesh.runtime.local.netns import netns_path
from canarymesh.runtime.local.pod_processes import SIDECAR, PodPlace, app_spec, log_path
from canarymesh.runtime.local.podnet import PodNetworks
from canarymesh.runtime.local.pods import PodPlan
from canarymesh.runtime.local.sandbox import (
    app_launcher,
    can_run,
    gateway_launcher,
    sidecar_launcher,
)
from canarymesh.runtime.local.supervisor import Supervisor
from canarymesh.xds.bootstrap import build_ads_bootstrap

__all__ = ["PodRunner", "Running", "sidecar_name"]

log = logging.getLogger(__name__)


def sidecar_name(proxy_id: str) -> str:
    return f"{proxy_id}.{SIDECAR}"


@dataclass(slots=True)
class Running:
    """A proxy this control plane started: its Envoy, and for a pod, its plan and app."""

    proxy: ProxyNode
    plan: PodPlan | None
    created: float
    place: PodPlace
    app: str | None = None
    # A database pod: the task preparing its data directory, and that directory.
    init: asyncio.Task[None] | None = None
    workdir: Path | None = None
    # What ``describe pod`` should say about how the pod runs (like the kubelet's events).
    warnings: list[str] = field(default_factory=list)


class PodRunner:
    """Owns the processes (and, with pod networks, the namespaces) of every proxy."""

    def __init__(
        self,
        state_dir: Path,
        run_dir: Path,
        supervisor: Supervisor,
        settings: MeshSettings,
        xds: int | str,
        network: PodNetworks | None,
        *,
        backoff: float = 0.5,
        base_env: Mapping[str, str] | None = None,
        envoy: Path | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.run_dir = run_dir
        self.supervisor = supervisor
        self.settings = settings
        self.xds = xds
        self.network = network
        self.backoff = backoff
        self.base_env = dict(base_env or {})
        self.envoy = envoy
        self.running: dict[str, Running] = {}

    def place(self, proxy: ProxyNode, plan: PodPlan | None) -> PodPlace:
        netns = None
        if self.network is not None and proxy.network is not None:
            netns = self.network.pod_netns(proxy.namespace, plan.name if plan else proxy.id)
        pod_dir = self.state_dir / "pods" / proxy.namespace / (plan.name if plan else proxy.id)
        return PodPlace(netns, netns_path(netns) if netns else None, self.log_dir, pod_dir)

    async def start(self, proxy: ProxyNode, plan: PodPlan | None) -> None:
        place = self.place(proxy, plan)
        running = Running(proxy, plan, time.time(), place)
        self.running[proxy.id] = running
        if place.netns is not None and self.network is not None and proxy.ip is not None:
            await self.network.add_pod(place.netns, proxy.namespace, proxy.ip, plan is not None)
        place.pod_dir.mkdir(parents=True, exist_ok=True)
        await self._start_sidecar(proxy, plan, place)
        if plan is None:
            return
        if isinstance(plan.recipe, MariaDbRecipe) and not plan.command:
            # Its data directory takes a second or two to create: the apply does not wait.
            running.app = f"{plan.proxy_id}.{plan.container}"
            running.init = asyncio.create_task(self._start_database(plan.recipe, plan, running))
            return
        plan = self._reachable(plan, running)
        app = app_spec(plan, proxy, place, self.base_env, self.backoff)
        running.app = app.name
        await self.supervisor.start(app, ready_timeout=None)

    def _reachable(self, plan: PodPlan, running: Running) -> PodPlan:
        """``plan``, or for a catalog image whose user cannot reach this checkout's Python (a
        private home), ``plan`` as root without privileges, with the reason kept on the pod."""
        if plan.run_as is None or plan.command or not isinstance(plan.recipe, PythonService):
            return plan
        uid, gid = plan.run_as
        if can_run(uid, gid, sys.executable):
            return plan
        running.warnings.append(
            f"securityContext user {uid} cannot run {sys.executable} (a private directory):"
            " the app runs as root without privileges instead"
        )
        log.warning("pod %s: %s", plan.proxy_id, running.warnings[-1])
        return replace(plan, run_as=None)

    async def _start_sidecar(self, proxy: ProxyNode, plan: PodPlan | None, place: PodPlace) -> None:
        config = build_ads_bootstrap(proxy, self.settings, self.xds)
        in_pod = place.netns is not None
        owner = (PROXY_UID, PROXY_GID) if in_pod and plan is not None else None
        directory = self.run_dir / "proxies" if in_pod else self.state_dir / "proxies"
        path = write_bootstrap(directory / f"{proxy.id}.json", config, owner)
        launcher = (
            sidecar_launcher(place.netns) if plan is not None else gateway_launcher(place.netns)
        )
        spec = envoy_spec(
            sidecar_name(proxy.id),
            path,
            self.log_dir,
            proxy.ports.admin,
            backoff_initial=self.backoff,
            binary=self.envoy,
            launcher=launcher,
            netns=place.netns_path,
        )
        await self.supervisor.start(spec, ready_timeout=None)

    async def _start_database(self, recipe: MariaDbRecipe, plan: PodPlan, running: Running) -> None:
        place = running.place
        spec, running.workdir = await prepare_mariadb(
            recipe,
            plan,
            running.proxy,
            log_path(place, plan, plan.container),
            self.backoff,
            app_launcher(place.netns, plan.run_as),
            place.netns_path,
        )
        await self.supervisor.start(spec, ready_timeout=None)

    async def stop(self, proxy_id: str) -> Running:
        running = self.running.pop(proxy_id)
        if running.init is not None:
            running.init.cancel()
        if running.app is not None and self.started(running.app):
            await self.supervisor.stop(running.app)
        if running.workdir is not None:
            remove_workdir(running.workdir)
        await self.supervisor.stop(sidecar_name(proxy_id))
        if running.place.netns is not None and self.network is not None:
            await self.network.remove_pod(running.place.netns)
        return running

    def started(self, name: str) -> bool:
        return self.supervisor.has(name)
