"""Make the running processes and every proxy's xDS match the applied resources.

The control plane (``daemon``) owns one :class:`Reconciler`. On each ``apply``/``delete`` it calls
:meth:`Reconciler.prepare` (typed resources, pods and mesh; raises :class:`ConfigError` and
changes nothing when the input cannot run) and then :meth:`Reconciler.realise`, which, in
make-before-break order:

1. issues a SPIFFE certificate to every new proxy and regenerates the snapshots; only snapshots
   whose version changed are pushed over ADS (the server sends only the types that changed);
2. starts each new pod (its network, sidecar and app) and an Envoy for each new gateway;
3. stops the pods that are gone (their endpoints were removed from the other proxies in step 1)
   and updates Prometheus' scrape targets and the telemetry's view of who is who.

The parts, each with one reason to change: :mod:`~canarymesh.runtime.local.desired` (typing and
scoping a change), :mod:`~canarymesh.runtime.local.pushes` (snapshots),
:mod:`~canarymesh.runtime.local.pod_lifecycle` (processes and namespaces),
:mod:`~canarymesh.runtime.local.identities` (certificates), the port and address books, and
:mod:`~canarymesh.runtime.local.pod_status` (what ``get pods`` shows).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pydantic import BaseModel

from canarymesh.api.objects import Resource
from canarymesh.errors import TemporaryError
from canarymesh.mesh.build import INGRESS_NAME, build_mesh
from canarymesh.mesh.capture import STATS_PORT
from canarymesh.mesh.model import MeshSettings, MeshSnapshot
from canarymesh.runtime.local.addresses import AddressBook
from canarymesh.runtime.local.catalog import MariaDbRecipe
from canarymesh.runtime.local.config_canaries import ConfigCanaries
from canarymesh.runtime.local.desired import Desired, Typed
from canarymesh.runtime.local.gateway import ingress_server_ports, primary_server_port
from canarymesh.runtime.local.identities import Identities
from canarymesh.runtime.local.local_ports import PortBook
from canarymesh.runtime.local.pod_lifecycle import PodRunner, sidecar_name
from canarymesh.runtime.local.pod_processes import app_spec
from canarymesh.runtime.local.pod_status import app_status
from canarymesh.runtime.local.pods import PodPlan, plan_pods
from canarymesh.runtime.local.prometheus import LocalPrometheus, TargetGroup
from canarymesh.runtime.local.pushes import PushCheckpoint, Pusher
from canarymesh.runtime.local.store import Document, Key
from canarymesh.xds.snapshot import XdsSnapshot
from canarymesh.xds.telemetry import PeerInfo, peer_info

__all__ = ["ENVOY_JOB", "TELEMETRY_JOB", "Prepared", "Reconciler"]

log = logging.getLogger(__name__)

ENVOY_JOB = "envoy-stats"
TELEMETRY_JOB = "istio-telemetry"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A change that can run: its resources, pods and mesh (proxies renamed to pod ids)."""

    resources: tuple[Resource[BaseModel], ...]
    pods: tuple[PodPlan, ...]
    mesh: MeshSnapshot
    # The proxies whose snapshot the change can touch; None: all of them.
    affected: frozenset[str] | None = None
    # Set when only VirtualServices changed: their hosts, whose virtual hosts alone are rebuilt.
    vs_hosts: frozenset[str] | None = None
    # proxy id -> (config canary, set) of the sidecars a running config canary split.
    members: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(slots=True)
class Staged:
    """What :meth:`Reconciler.stage` changed, and what it was before (to take it back)."""

    mesh: MeshSnapshot | None
    desired: Typed
    snapshots: dict[str, XdsSnapshot]
    pusher: PushCheckpoint
    members: Mapping[str, tuple[str, str]]
    pushed: list[str] = field(default_factory=list)


class Reconciler:
    """Owns the proxies and apps of one local mesh."""

    def __init__(
        self,
        runner: PodRunner,
        pusher: Pusher,
        identities: Identities,
        prometheus: LocalPrometheus | None,
        ingress_port: int,
        settings: MeshSettings,
        addresses: AddressBook | None = None,
        config_canaries: ConfigCanaries | None = None,
        ports: PortBook | None = None,
    ) -> None:
        self.runner = runner
        self.pusher = pusher
        self.identities = identities
        self.prometheus = prometheus
        self.ingress_port = ingress_port
        self.settings = settings
        self.addresses = addresses
        self.ports = ports or PortBook()
        self.ports.taken.add(ingress_port)
        self.desired = Desired()
        self.config_canaries = config_canaries or ConfigCanaries()
        # Who called a service lately (its FQDN -> proxy ids): a config canary's clients.
        self.callers: Callable[[str], set[str]] = lambda host: set()
        self.mesh: MeshSnapshot | None = None
        self.config_members: Mapping[str, tuple[str, str]] = {}
        self.telemetry_targets: tuple[str, ...] = ()
        # Prometheus reaches pod IPs through this proxy (pod networks only).
        self.scrape_proxy: str | None = None
        # For the telemetry collector: node id -> workload, and an address -> workload (a
        # pod's IP in a pod network, a sidecar's inbound listener on the shared network).
        self.peers: dict[str, PeerInfo] = {}
        self.inbound_peers: dict[str, PeerInfo] = {}
        # Proxy id -> the hosts of the services that select it (what its inbound logs may name).
        self.services_of: dict[str, frozenset[str]] = {}
        # (workload, namespace) of every running proxy: the only workloads metrics may name.
        self.known_workloads: frozenset[tuple[str, str]] = frozenset()

    @property
    def pod_network(self) -> bool:
        return self.addresses is not None

    # -- planning (nothing changes) -------------------------------------------------------------

    def prepare(self, documents: Mapping[Key, Document]) -> Prepared:
        """Typed resources, pods and mesh for ``documents``; ConfigError when they cannot run.

        A running config canary's split stands in for the documents it changes, and the pods it
        chose carry its label (:mod:`~canarymesh.runtime.local.config_canaries`)."""
        stored = documents
        documents = self.config_canaries.rewrite(documents)
        resources = self.desired.typed(documents)
        pods = tuple(plan_pods(resources))
        names = {p.replica_id: p.proxy_id for p in pods}
        self.ports.pods = names
        primary = primary_server_port(ingress_server_ports(resources))
        fixed = {("gateway", INGRESS_NAME, str(primary)): self.ingress_port} if primary else {}
        if not self.pod_network:
            # A program of the user's own binds its containerPort itself on the shared network.
            for plan in pods:
                if plan.command:
                    for port in plan.ports:
                        fixed[("app", plan.proxy_id, str(port))] = port
        self.ports.fixed = fixed
        if self.addresses is not None:
            self.addresses.pods = {p.replica_id: f"{p.namespace}/{p.name}" for p in pods}
        mesh = build_mesh(resources, self.ports, self.settings, self.addresses)
        proxies = tuple(
            self.identities.attach(replace(p, id=names.get(p.id, p.id))) for p in mesh.proxies
        )
        mesh, members = self.config_canaries.label(
            stored, replace(mesh, proxies=proxies), self.callers
        )
        by_id = {p.id: p for p in mesh.proxies}
        for plan in pods:  # fail now, not half-way through starting processes
            if not isinstance(plan.recipe, MariaDbRecipe) or plan.command:
                proxy = by_id[plan.proxy_id]
                app_spec(plan, proxy, self.runner.place(proxy, plan), {}, 0.0)
        return Prepared(resources, pods, mesh, *self.desired.scope(self.mesh, mesh), members)

    # -- acting ---------------------------------------------------------------------------------

    async def realise(self, prepared: Prepared) -> list[str]:
        """Push, start and stop as ``prepared`` says; returns the proxies whose config changed."""
        staged = self.stage(prepared)
        await self.finish(prepared)
        return staged.pushed

    async def adopt(self, prepared: Prepared, settle: float = 3.0) -> list[str]:
        """Take over the proxies an earlier control plane left running (before the first push),
        and wait (at most ``settle`` s) for their readiness, so that the first push keeps them
        as endpoints: a restart loses no traffic."""
        plans = {p.proxy_id: p for p in prepared.pods}
        adopted = [
            proxy.id
            for proxy in prepared.mesh.proxies
            if proxy.id not in self.runner.running
            and await self.runner.adopt(proxy, plans.get(proxy.id))
        ]
        pods = {p for p in adopted if p in plans}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settle
        while adopted and not pods <= self.ready_pods() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return adopted

    def stage(self, prepared: Prepared) -> Staged:
        """Push ``prepared``'s config to the proxies, remembering how to take it back.

        Raises ConfigError (with everything restored) when a resource cannot even be encoded."""
        staged = Staged(
            self.mesh,
            self.desired.checkpoint(),
            dict(self.pusher.snapshots),
            self.pusher.checkpoint(),
            self.config_members,
        )
        self.mesh = prepared.mesh
        self.config_members = prepared.members
        self.desired.commit()
        try:
            staged.pushed = self.pusher.push(
                prepared.mesh, self.ready_pods(), prepared.affected, prepared.vs_hosts
            )
        except Exception:
            self.restore(staged)
            raise
        return staged

    async def rejections(self, staged: Staged, timeout: float = 5.0) -> dict[str, str]:
        """The running proxies that NACKed what :meth:`stage` pushed, with Envoy's reasons."""
        ads = self.pusher.ads
        waiting = [
            node
            for node in staged.pushed
            if node in self.runner.running and ads.node_status(node).connected
        ]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        found: dict[str, str] = {}
        for node in waiting:
            try:
                status = await ads.wait_settled(node, max(0.05, deadline - loop.time()))
            except TemporaryError:
                continue  # no answer in time: what it says later shows in proxy-status
            if status.errors:
                found[node] = "; ".join(f"{t}: {m}" for t, m in sorted(status.errors.items()))
        return found

    def restore(self, staged: Staged) -> None:
        """Take back what :meth:`stage` pushed: every proxy returns to its previous config."""
        self.mesh = staged.mesh
        self.config_members = staged.members
        self.desired.restore(staged.desired)
        self.pusher.restore(staged.pusher, staged.snapshots, staged.pushed)

    async def finish(self, prepared: Prepared) -> None:
        """Start the new pods and gateways, stop those that are gone, update who is who."""
        mesh = prepared.mesh
        plans = {p.proxy_id: p for p in prepared.pods}
        await asyncio.gather(
            *(
                self.runner.start(proxy, plans.get(proxy.id))
                for proxy in mesh.proxies
                if proxy.id not in self.runner.running
            )
        )
        wanted = {p.id for p in mesh.proxies}
        gone = [name for name in self.runner.running if name not in wanted]
        await asyncio.gather(*(self.stop(name) for name in gone))
        if self.addresses is not None:
            self.addresses.keep_only(
                "pod",
                {f"{p.namespace}/{p.name}" for p in prepared.pods}
                | {p.id for p in mesh.proxies if p.kind == "gateway"},
            )
            self.addresses.keep_only("service", {f"{s.namespace}/{s.name}" for s in mesh.services})
            self.addresses.keep_only("entry", {s.hostname for s in mesh.services})
            self.addresses.save()
        self.update_peers()
        self.update_targets()

    async def stop(self, proxy_id: str) -> None:
        await self.runner.stop(proxy_id)
        self.pusher.forget(proxy_id)
        self.identities.forget(proxy_id)

    def push(self, mesh: MeshSnapshot) -> list[str]:
        return self.pusher.push(mesh, self.ready_pods())

    def ready_pods(self) -> frozenset[str]:
        """Pods whose app and sidecar both pass their readiness probes."""
        ready = set()
        for name, running in self.runner.running.items():
            if running.plan is None:
                continue
            if not app_status(self.runner, sidecar_name(name)).ready:
                continue
            if running.app is None or app_status(self.runner, running.app).ready:
                ready.add(name)
        return frozenset(ready)

    async def watch_readiness(self, interval: float = 0.05) -> None:
        """Re-push whenever a pod turns ready or stops being ready (run as a task)."""
        while True:
            await asyncio.sleep(interval)
            try:
                if self.mesh is not None and self.ready_pods() != self.pusher.endpoint_pods:
                    self.push(self.mesh)
            except Exception:  # a bug must not stop every later push: log it, try again
                log.exception("pushing after a readiness change failed")
                await asyncio.sleep(1.0)

    def update_peers(self) -> None:
        running = self.runner.running
        peers = {name: peer_info(r.proxy, self.settings) for name, r in running.items()}
        self.peers = peers
        self.known_workloads = frozenset((p.workload, p.namespace) for p in peers.values())
        inbound: dict[str, PeerInfo] = {}
        for name, r in running.items():
            if r.proxy.ip is not None:
                inbound[r.proxy.ip] = peers[name]
            else:
                for _, port in r.proxy.ports.inbound:
                    inbound[f"127.0.0.1:{port}"] = peers[name]
        self.inbound_peers = inbound
        services_of: dict[str, set[str]] = {}
        if self.mesh is not None:
            for service in self.mesh.services:
                if not service.selector:
                    continue
                for proxy in self.mesh.proxies:
                    if proxy.kind == "sidecar" and proxy.namespace == service.namespace:
                        labels = proxy.label_map
                        if all(labels.get(k) == v for k, v in service.selector):
                            services_of.setdefault(proxy.id, set()).add(service.hostname)
        self.services_of = {k: frozenset(v) for k, v in services_of.items()}

    def update_targets(self) -> None:
        if self.prometheus is None:
            return
        groups = []
        for r in sorted(self.runner.running.values(), key=lambda r: r.proxy.id):
            proxy = r.proxy
            target = f"{proxy.ip}:{STATS_PORT}" if proxy.ip else f"127.0.0.1:{proxy.ports.admin}"
            groups.append(
                TargetGroup(
                    (target,),
                    {
                        "pod": r.plan.name if r.plan else proxy.id,
                        "namespace": proxy.namespace,
                        "workload": proxy.workload,
                        "app": proxy.label_map.get("app", proxy.workload),
                        "version": proxy.label_map.get("version", ""),
                    },
                )
            )
        self.prometheus.set_targets(ENVOY_JOB, groups)
        telemetry = [TargetGroup(self.telemetry_targets)] if self.telemetry_targets else []
        self.prometheus.set_targets(TELEMETRY_JOB, telemetry)
