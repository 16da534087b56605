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
import hashlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from canarymesh.mesh.capture import PROXY_GID, PROXY_UID
from canarymesh.mesh.model import MeshSettings, ProxyNode
from canarymesh.runtime.local.catalog import MariaDbRecipe, PythonService
from canarymesh.runtime.local.credentials import XDS_PURPOSE, MeshCredentials
from canarymesh.runtime.local.databases import (
    database_workdir,
    mariadb_spec,
    prepare_mariadb,
    remove_workdir,
)
from canarymesh.runtime.local.envoy import envoy_spec, write_bootstrap
from canarymesh.runtime.local.netns import netns_path
from canarymesh.runtime.local.pod_processes import SIDECAR, PodPlace, app_spec, log_path
from canarymesh.runtime.local.podnet import PodNetworks, mesh_id
from canarymesh.runtime.local.pods import PodPlan
from canarymesh.runtime.local.sandbox import (
    app_launcher,
    can_run,
    gateway_launcher,
    sidecar_launcher,
)
from canarymesh.runtime.local.supervisor import ProcessSpec, Supervisor
from canarymesh.xds.bootstrap import build_ads_bootstrap

__all__ = ["PodRunner", "Running", "sidecar_name"]

log = logging.getLogger(__name__)


def sidecar_name(proxy_id: str) -> str:
    return f"{proxy_id}.{SIDECAR}"


def admin_dir(state_dir: Path) -> Path:
    """The shared network's admin sockets: a 0700 directory under the system temp dir."""
    return Path(tempfile.gettempdir()) / f"cm-admin-{mesh_id(state_dir)}"


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
    # The shared network: the Envoy admin's 0600 Unix socket (a pod's admin is on its loopback).
    admin_socket: str | None = None
    # Taken over from an earlier control plane, not started by this one.
    adopted: bool = False


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
        credentials: MeshCredentials | None = None,
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
        self.credentials = credentials
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
            await self.network.ensure_pod(place.netns, proxy.namespace, proxy.ip, plan is not None)
        place.pod_dir.mkdir(parents=True, exist_ok=True)
        await self.supervisor.start(self._sidecar_spec(running), ready_timeout=None)
        if plan is None:
            return
        if self._is_database(plan):
            # Its data directory takes a second or two to create: the apply does not wait.
            running.app = f"{plan.proxy_id}.{plan.container}"
            running.init = asyncio.create_task(self._start_database(plan, running))
            return
        app = app_spec(self._reachable(plan, running), proxy, place, self.base_env, self.backoff)
        running.app = app.name
        await self.supervisor.start(app, ready_timeout=None)

    async def adopt(self, proxy: ProxyNode, plan: PodPlan | None) -> bool:
        """Take over a pod (or gateway) an earlier control plane started, if its sidecar still
        runs from the very same spec: nothing is restarted, its app is adopted too (or, if it
        died meanwhile, started). False, and nothing done, when there is nothing to adopt."""
        place = self.place(proxy, plan)
        if place.netns is not None and not Path(str(place.netns_path)).exists():
            return False
        running = Running(proxy, plan, time.time(), place)
        if not self.supervisor.adopt(self._sidecar_spec(running)):
            return False
        self.running[proxy.id] = running
        running.adopted = True
        if plan is None:
            return True
        if self._is_database(plan):
            assert isinstance(plan.recipe, MariaDbRecipe)
            spec = self._database_spec(plan, running)
            running.app, running.workdir = spec.name, database_workdir(plan.proxy_id)
            if not self.supervisor.adopt(spec):
                running.init = asyncio.create_task(self._start_database(plan, running))
            return True
        app = app_spec(self._reachable(plan, running), proxy, place, self.base_env, self.backoff)
        running.app = app.name
        if not self.supervisor.adopt(app):
            await self.supervisor.start(app, ready_timeout=None)
        return True

    @staticmethod
    def _is_database(plan: PodPlan) -> bool:
        return isinstance(plan.recipe, MariaDbRecipe) and not plan.command

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

    def admin_socket(self, proxy: ProxyNode) -> str | None:
        """On the shared network, where the proxy's admin listens (short: Unix socket paths
        must fit in 107 bytes); None in a pod network (the pod's own loopback)."""
        if proxy.network is not None:
            return None
        digest = hashlib.sha256(proxy.id.encode()).hexdigest()[:16]
        return str(admin_dir(self.state_dir) / f"{digest}.sock")

    def _sidecar_spec(self, running: Running) -> ProcessSpec:
        """The Envoy of a pod or gateway, its bootstrap (re)written: the same content for the
        same proxy, so an adopted Envoy restarted later starts as it was."""
        proxy, plan, place = running.proxy, running.plan, running.place
        token = self.credentials.token(XDS_PURPOSE, proxy.id) if self.credentials else None
        admin_socket = self.admin_socket(proxy)
        if admin_socket is not None:
            directory = Path(admin_socket).parent
            directory.mkdir(mode=0o700, exist_ok=True)
            os.chmod(directory, 0o700)
            running.admin_socket = admin_socket
        config = build_ads_bootstrap(proxy, self.settings, self.xds, token, admin_socket)
        in_pod = place.netns is not None
        owner = (PROXY_UID, PROXY_GID) if in_pod and plan is not None else None
        directory = self.run_dir / "proxies" if in_pod else self.state_dir / "proxies"
        path = write_bootstrap(directory / f"{proxy.id}.json", config, owner)
        launcher = (
            sidecar_launcher(place.netns) if plan is not None else gateway_launcher(place.netns)
        )
        return envoy_spec(
            sidecar_name(proxy.id),
            path,
            self.log_dir,
            proxy.ports.admin,
            backoff_initial=self.backoff,
            binary=self.envoy,
            launcher=launcher,
            netns=place.netns_path,
            admin_socket=admin_socket,
            detached=True,
        )

    def _database_spec(self, plan: PodPlan, running: Running) -> ProcessSpec:
        assert isinstance(plan.recipe, MariaDbRecipe)
        place = running.place
        return mariadb_spec(
            plan.recipe,
            plan,
            running.proxy,
            log_path(place, plan, plan.container),
            self.backoff,
            app_launcher(place.netns, plan.run_as),
            place.netns_path,
        )

    async def _start_database(self, plan: PodPlan, running: Running) -> None:
        assert isinstance(plan.recipe, MariaDbRecipe)
        log_file = log_path(running.place, plan, plan.container)
        running.workdir = await prepare_mariadb(plan.recipe, plan, log_file)
        await self.supervisor.start(self._database_spec(plan, running), ready_timeout=None)

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
