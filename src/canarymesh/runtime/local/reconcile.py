"""Make the running processes and every proxy's xDS match the applied resources.

The control plane (``daemon``) owns one :class:`Reconciler`. On each ``apply``/``delete`` it calls
:meth:`Reconciler.prepare` (typed resources, pods and mesh; raises :class:`ConfigError` and
changes nothing when the input cannot run) and then :meth:`Reconciler.realise`, which, in
make-before-break order:

1. issues a SPIFFE certificate to every new proxy and regenerates the snapshots; only snapshots
   whose version changed are pushed over ADS (the server sends only the types that changed);
2. starts the Envoy and the app of each new pod, and an Envoy for each new gateway;
3. stops the pods that are gone (their endpoints were removed from the other proxies in step 1)
   and updates Prometheus' scrape targets.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

from pydantic import BaseModel

from canarymesh.api.istio_networking import VirtualService
from canarymesh.api.loader import load_text
from canarymesh.api.objects import Resource
from canarymesh.errors import ConfigError
from canarymesh.mesh.build import INGRESS_NAME, PortKey, build_mesh
from canarymesh.mesh.index import MeshIndex, affected_proxies
from canarymesh.mesh.model import (
    Config,
    MeshSettings,
    MeshSnapshot,
    ProxyNode,
    WorkloadIdentity,
    resolve_host,
)
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.runtime.local.ca import LocalCA, spiffe_id
from canarymesh.runtime.local.catalog import MariaDbRecipe
from canarymesh.runtime.local.databases import prepare_mariadb, remove_workdir
from canarymesh.runtime.local.envoy import envoy_spec, write_bootstrap
from canarymesh.runtime.local.gateway import ingress_server_ports, primary_server_port
from canarymesh.runtime.local.pods import PodPlan, app_spec, plan_pods
from canarymesh.runtime.local.prometheus import LocalPrometheus, TargetGroup
from canarymesh.runtime.local.store import Document, Key
from canarymesh.runtime.local.supervisor import ChildStatus, Phase, ProcessSpec, Supervisor
from canarymesh.xds.bootstrap import build_ads_bootstrap
from canarymesh.xds.generate import generate, update_virtual_services
from canarymesh.xds.snapshot import XdsSnapshot
from canarymesh.xds.telemetry import PeerInfo, peer_info

__all__ = ["ENVOY_JOB", "TELEMETRY_JOB", "PortBook", "Prepared", "Reconciler", "sidecar_name"]

ENVOY_JOB = "envoy-stats"
TELEMETRY_JOB = "istio-telemetry"
SIDECAR = "istio-proxy"
# Istio config kinds whose change ``affected_proxies`` can narrow down to some proxies.
ROUTING_KINDS = frozenset(
    {"VirtualService", "DestinationRule", "PeerAuthentication", "AuthorizationPolicy"}
)


def sidecar_name(proxy_id: str) -> str:
    return f"{proxy_id}.{SIDECAR}"


def free_port(taken: set[int]) -> int:
    """A loopback port nothing listens on and that this mesh has not handed out."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


@dataclass(slots=True)
class PortBook:
    """build_mesh's port allocator: real free ports, the same for the same key while we run.

    ``pods`` renames build_mesh's replica ids (``reviews-v1-0``) to pod names, so a replaced pod
    gets fresh ports and can run beside the pod it replaces.
    """

    fixed: dict[PortKey, int] = field(default_factory=dict)
    assigned: dict[PortKey, int] = field(default_factory=dict)
    taken: set[int] = field(default_factory=set)
    pods: dict[str, str] = field(default_factory=dict)

    def __call__(self, key: PortKey) -> int:
        kind, proxy, detail = key
        key = (kind, self.pods.get(proxy, proxy), detail)
        if key in self.fixed:
            return self.fixed[key]
        if key not in self.assigned:
            self.assigned[key] = free_port(self.taken)
        return self.assigned[key]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A change that can run: its resources, pods and mesh (proxies renamed to pod names)."""

    resources: tuple[Resource[BaseModel], ...]
    pods: tuple[PodPlan, ...]
    mesh: MeshSnapshot
    # The proxies whose snapshot the change can touch; None: all of them.
    affected: frozenset[str] | None = None
    # Set when only VirtualServices changed: their hosts, whose virtual hosts alone are rebuilt.
    vs_hosts: frozenset[str] | None = None


@dataclass(slots=True)
class Running:
    """A proxy this control plane started: its Envoy, and for a pod, its plan and app."""

    proxy: ProxyNode
    plan: PodPlan | None
    created: float
    app: str | None = None
    # A database pod: the task preparing its data directory, and that directory.
    init: asyncio.Task[None] | None = None
    workdir: Path | None = None


class Reconciler:
    """Owns the proxies and apps of one local mesh."""

    def __init__(
        self,
        state_dir: Path,
        supervisor: Supervisor,
        ads: AdsServer,
        ca: LocalCA,
        prometheus: LocalPrometheus | None,
        ingress_port: int,
        settings: MeshSettings,
        *,
        backoff: float = 0.5,
        base_env: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.supervisor = supervisor
        self.ads = ads
        self.ca = ca
        self.prometheus = prometheus
        self.ingress_port = ingress_port
        self.settings = settings
        self.backoff = backoff
        self.base_env = dict(base_env or {"PATH": os.environ.get("PATH", os.defpath)})
        self.ports = PortBook()
        self.ports.taken.add(ingress_port)
        self.running: dict[str, Running] = {}
        self.snapshots: dict[str, XdsSnapshot] = {}
        self.identities: dict[str, WorkloadIdentity] = {}
        self.mesh: MeshSnapshot | None = None
        self._index: MeshIndex | None = None
        # The ready pods the last push made endpoints of (None before the first push).
        self.endpoint_pods: frozenset[str] | None = None
        # Store key -> (document, its typed resource); _pending_cache is adopted by realise.
        self._loaded: dict[Key, tuple[Document, Resource[BaseModel]]] = {}
        self._pending_cache: dict[Key, tuple[Document, Resource[BaseModel]]] = {}
        self.telemetry_targets: tuple[str, ...] = ()
        # For the telemetry collector: node id -> workload, and inbound address -> workload.
        self.peers: dict[str, PeerInfo] = {}
        self.inbound_peers: dict[str, PeerInfo] = {}

    # -- planning (nothing changes) -------------------------------------------------------------

    def prepare(self, documents: Mapping[Key, Document]) -> Prepared:
        """Typed resources, pods and mesh for ``documents``; ConfigError when they cannot run."""
        resources = self._typed(documents)
        pods = tuple(plan_pods(resources))
        names = {p.proxy_id: p.name for p in pods}
        self.ports.pods = names
        primary = primary_server_port(ingress_server_ports(resources))
        self.ports.fixed = (
            {("gateway", INGRESS_NAME, str(primary)): self.ingress_port} if primary else {}
        )
        mesh = build_mesh(resources, self.ports, self.settings)
        proxies = tuple(
            self._with_identity(replace(p, id=names.get(p.id, p.id))) for p in mesh.proxies
        )
        mesh = replace(mesh, proxies=proxies)
        by_id = {p.id: p for p in proxies}
        for plan in pods:  # fail now, not half-way through starting processes
            if not isinstance(plan.recipe, MariaDbRecipe):
                app_spec(plan, by_id[plan.name], self.log_dir, self.base_env, self.backoff)
        return Prepared(resources, pods, mesh, *self._scope(mesh))

    def _scope(self, mesh: MeshSnapshot) -> tuple[frozenset[str] | None, frozenset[str] | None]:
        """Proxies a pure routing/policy change touches (``mesh.index.affected_proxies``), and
        for a change of VirtualServices only, their hosts.

        Anything else (workloads, services, gateways' own resources, proxies or ports that
        changed) regenerates every proxy; the ADS server still pushes only what differs.
        """
        if self.mesh is None or self.mesh.proxies != mesh.proxies:
            return None, None
        before, after = self._loaded, self._pending_cache
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        found: set[str] = set()
        hosts: set[str] | None = set()
        for key in changed:
            for entry in (before.get(key), after.get(key)):
                if entry is None:
                    continue
                resource = entry[1]
                if resource.kind not in ROUTING_KINDS or "istio.io" not in resource.api_version:
                    return None, None
                namespace = resource.namespace_or("default")
                config = cast(
                    Config[object], Config(resource.kind, resource.name, namespace, resource.spec)
                )
                found.update(p.id for p in affected_proxies(mesh, config))
                spec = resource.spec
                if hosts is not None and isinstance(spec, VirtualService):
                    hosts.update(resolve_host(h, namespace) for h in spec.hosts)
                else:
                    hosts = None
        return frozenset(found), (frozenset(hosts) if hosts is not None else None)

    def _typed(self, documents: Mapping[Key, Document]) -> tuple[Resource[BaseModel], ...]:
        """The api package's resources for ``documents``; only new or changed ones are loaded.

        Each document is typed and validated on its own (its checks do not depend on the others),
        so the previous apply's results are reused: re-typing the whole store on each apply
        cost more than everything else an apply does.
        """
        fresh = {k: d for k, d in documents.items() if self._loaded.get(k, (None,))[0] != d}
        typed: dict[tuple[str, str, str, str], Resource[BaseModel]] = {}
        if fresh:
            text = "\n---\n".join(json.dumps(d) for d in fresh.values())
            loaded = load_text(text, "<applied resources>")
            if loaded.diagnostics.has_errors:
                raise ConfigError("\n".join(loaded.diagnostics.lines()))
            typed = {
                (r.api_version, r.kind, r.namespace_or(""), r.name): r for r in loaded.resources
            }
        cache = {k: v for k, v in self._loaded.items() if k in documents and k not in fresh}
        for key, document in fresh.items():
            meta = document.get("metadata")
            namespace = str(meta.get("namespace") or "") if isinstance(meta, dict) else ""
            api_version, kind = str(document.get("apiVersion")), str(document.get("kind"))
            found = typed.get((api_version, kind, namespace, key[2]))
            if found is not None:
                cache[key] = (document, found)
        self._pending_cache = cache
        return tuple(resource for _, resource in cache.values())

    def _with_identity(self, proxy: ProxyNode) -> ProxyNode:
        identity = self.identities.get(proxy.id)
        if identity is None:
            cert = self.ca.issue(
                spiffe_id(proxy.namespace, proxy.service_account), dt.datetime.now(dt.UTC)
            )
            identity = WorkloadIdentity(cert.chain_pem, cert.key_pem, self.ca.root_pem)
            self.identities[proxy.id] = identity
        return replace(proxy, identity=identity)

    # -- acting ---------------------------------------------------------------------------------

    async def realise(self, prepared: Prepared) -> list[str]:
        """Push, start and stop as ``prepared`` says; returns the proxies whose config changed."""
        mesh = prepared.mesh
        self.mesh = mesh
        self._loaded = self._pending_cache
        pushed = self.push(mesh, prepared.affected, prepared.vs_hosts)
        plans = {p.name: p for p in prepared.pods}
        for proxy in mesh.proxies:
            if proxy.id not in self.running:
                await self._start(proxy, plans.get(proxy.id))
        gone = [name for name in self.running if name not in {p.id for p in mesh.proxies}]
        await asyncio.gather(*(self._stop(name) for name in gone))
        self._update_peers()
        self.update_targets()
        return pushed

    def _update_peers(self) -> None:
        peers = {name: peer_info(r.proxy, self.settings) for name, r in self.running.items()}
        self.peers = peers
        self.inbound_peers = {
            f"127.0.0.1:{port}": peers[name]
            for name, r in self.running.items()
            for _, port in r.proxy.ports.inbound
        }

    def push(
        self,
        mesh: MeshSnapshot,
        only: frozenset[str] | None = None,
        vs_hosts: frozenset[str] | None = None,
    ) -> list[str]:
        """Regenerate the snapshots of ``only`` (None: every proxy) and push those that changed;
        with ``vs_hosts``, only those hosts' virtual hosts are rebuilt (the xds shortcut).

        As in Istio, only ready pods are endpoints: every proxy's config comes from the mesh
        without the pods that are not ready, and a change of that set regenerates everything.
        """
        ready = self.ready_pods()
        if ready != self.endpoint_pods:
            only = vs_hosts = None
        self.endpoint_pods = ready
        serving = replace(
            mesh, proxies=tuple(p for p in mesh.proxies if p.kind == "gateway" or p.id in ready)
        )
        incremental = vs_hosts is not None and self._index is not None
        index = (
            self._index.with_virtual_services(serving)
            if vs_hosts is not None and self._index is not None
            else MeshIndex.of(serving)
        )
        self._index = index
        pushed = []
        for proxy in mesh.proxies:
            if only is not None and proxy.id not in only and proxy.id in self.snapshots:
                continue
            previous = self.snapshots.get(proxy.id)
            if incremental and vs_hosts is not None and previous is not None:
                snapshot = update_virtual_services(previous, serving, proxy, index, vs_hosts)
            else:
                snapshot = generate(serving, proxy, index)
            if previous is not None and previous.version == snapshot.version:
                continue
            self.ads.set_snapshot(proxy.id, snapshot)
            self.snapshots[proxy.id] = snapshot
            pushed.append(proxy.id)
        return pushed

    def ready_pods(self) -> frozenset[str]:
        """Pods whose app and sidecar both pass their readiness probes."""
        ready = set()
        for name, running in self.running.items():
            if running.plan is None:
                continue
            if not self.supervisor.child_status(sidecar_name(name)).ready:
                continue
            if running.app is None or self._status(running.app).ready:
                ready.add(name)
        return frozenset(ready)

    async def watch_readiness(self, interval: float = 0.05) -> None:
        """Re-push whenever a pod turns ready or stops being ready (run as a task)."""
        while True:
            await asyncio.sleep(interval)
            if self.mesh is not None and self.ready_pods() != self.endpoint_pods:
                self.push(self.mesh)

    async def _start(self, proxy: ProxyNode, plan: PodPlan | None) -> None:
        config = build_ads_bootstrap(proxy, self.settings, self.ads.port)
        path = write_bootstrap(self.state_dir / "proxies" / f"{proxy.id}.json", config)
        spec = envoy_spec(
            sidecar_name(proxy.id),
            path,
            self.log_dir,
            proxy.ports.admin,
            backoff_initial=self.backoff,
        )
        spec = replace(spec, backoff_max=10.0)
        running = Running(proxy, plan, time.time())
        self.running[proxy.id] = running
        await self.supervisor.start(spec, ready_timeout=None)
        if plan is None:
            return
        if isinstance(plan.recipe, MariaDbRecipe):
            # Its data directory takes a second or two to create: the apply does not wait.
            running.app = f"{plan.name}.{plan.container}"
            running.init = asyncio.create_task(self._start_database(plan.recipe, plan, running))
            return
        app: ProcessSpec = app_spec(plan, proxy, self.log_dir, self.base_env, self.backoff)
        running.app = app.name
        await self.supervisor.start(app, ready_timeout=None)

    async def _start_database(self, recipe: MariaDbRecipe, plan: PodPlan, running: Running) -> None:
        spec, running.workdir = await prepare_mariadb(
            recipe, plan, running.proxy, self.log_dir, self.backoff
        )
        await self.supervisor.start(spec, ready_timeout=None)

    async def _stop(self, proxy_id: str) -> None:
        running = self.running.pop(proxy_id)
        if running.init is not None:
            running.init.cancel()
        if running.app is not None and self._started(running.app):
            await self.supervisor.stop(running.app)
        if running.workdir is not None:
            remove_workdir(running.workdir)
        await self.supervisor.stop(sidecar_name(proxy_id))
        self.ads.remove_node(proxy_id)
        self.snapshots.pop(proxy_id, None)
        self.identities.pop(proxy_id, None)

    def update_targets(self) -> None:
        if self.prometheus is None:
            return
        groups = [
            TargetGroup(
                (f"127.0.0.1:{r.proxy.ports.admin}",),
                {
                    "pod": r.proxy.id,
                    "namespace": r.proxy.namespace,
                    "workload": r.proxy.workload,
                    "app": r.proxy.label_map.get("app", r.proxy.workload),
                    "version": r.proxy.label_map.get("version", ""),
                },
            )
            for r in sorted(self.running.values(), key=lambda r: r.proxy.id)
        ]
        self.prometheus.set_targets(ENVOY_JOB, groups)
        telemetry = [TargetGroup(self.telemetry_targets)] if self.telemetry_targets else []
        self.prometheus.set_targets(TELEMETRY_JOB, telemetry)

    # -- reading --------------------------------------------------------------------------------

    def pod_rows(self) -> list[dict[str, object]]:
        """Each pod's state as ``get pods`` shows it."""
        rows = []
        now = time.time()
        for name, running in sorted(self.running.items()):
            plan = running.plan
            if plan is None:
                continue
            children = [self.supervisor.child_status(sidecar_name(name))]
            if running.app is not None:
                children.insert(0, self._status(running.app))
            rows.append(
                {
                    "name": name,
                    "namespace": plan.namespace,
                    "deployment": plan.deployment,
                    "ready": f"{sum(c.ready for c in children)}/{len(children)}",
                    "status": pod_phase(children),
                    "restarts": sum(c.restarts for c in children),
                    "age": now - running.created,
                    "containers": [_child_json(c) for c in children],
                    "labels": dict(running.proxy.labels),
                    "service_account": running.proxy.service_account,
                    "ports": {
                        "admin": running.proxy.ports.admin,
                        "outbound_http": running.proxy.ports.outbound_http,
                        "inbound": dict(running.proxy.ports.inbound),
                        "app": dict(running.proxy.ports.app),
                    },
                }
            )
        return rows

    def gateway_rows(self) -> list[dict[str, object]]:
        rows = []
        for name, running in sorted(self.running.items()):
            if running.plan is not None:
                continue
            status = self.supervisor.child_status(sidecar_name(name))
            rows.append(
                {
                    "name": name,
                    "namespace": running.proxy.namespace,
                    "ports": {str(k): v for k, v in running.proxy.ports.gateway},
                    "admin": running.proxy.ports.admin,
                    **_child_json(status),
                }
            )
        return rows

    def containers_of(self, pod: str) -> dict[str, ChildStatus]:
        running = self.running.get(pod)
        if running is None:
            known = ", ".join(sorted(self.running)) or "none"
            raise ConfigError(f"no pod or gateway named {pod!r} (known: {known})")
        found = {SIDECAR: self.supervisor.child_status(sidecar_name(pod))}
        if running.app is not None and running.plan is not None:
            found[running.plan.container] = self._status(running.app)
        return found

    def _started(self, name: str) -> bool:
        return any(c.name == name for c in self.supervisor.status())

    def _status(self, name: str) -> ChildStatus:
        """A child's status; one still being prepared (a database) is Starting, not ready."""
        if self._started(name):
            return self.supervisor.child_status(name)
        return ChildStatus(name, None, Phase.STARTING, False, 0, None, None)


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


def _child_json(status: ChildStatus) -> dict[str, object]:
    return {
        "name": status.name,
        "pid": status.pid,
        "phase": status.phase.value,
        "ready": status.ready,
        "restarts": status.restarts,
        "last_exit_code": status.last_exit_code,
        "error": status.error,
    }
