"""The control plane's operations, shared by every API request: apply, delete, read, wait.

Built by :mod:`canarymesh.runtime.local.daemon` around one :class:`Reconciler` and one
:class:`Store`; called by :mod:`canarymesh.runtime.local.api_server`. Changes are serialised by a
lock, and a change is committed to the store only after the reconciler accepted it, so a refused
input leaves the mesh as it was. Answers are the models of :mod:`.api_models`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import cast

from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.mesh.build import INGRESS_LABELS, INGRESS_NAME
from canarymesh.routing.config_split import CANARY as CONFIG_CANARY
from canarymesh.routing.config_split import STABLE as CONFIG_STABLE
from canarymesh.runtime.local.api_models import (
    ChangeResult,
    Component,
    ConfigCanaryState,
    DocumentText,
    ExecTarget,
    GatewayStatus,
    Logs,
    MeshStatus,
    Pod,
    PodList,
    ProxyStatus,
    ProxyStatusList,
    ResourceList,
)
from canarymesh.runtime.local.config_canaries import config_change_of
from canarymesh.runtime.local.envoy import EnvoyAdmin
from canarymesh.runtime.local.pod_status import (
    container_statuses,
    find_pod,
    gateway_rows,
    pod_rows,
)
from canarymesh.runtime.local.pods import app_env
from canarymesh.runtime.local.reconcile import Reconciler
from canarymesh.runtime.local.store import Document, Key, Store, split_documents
from canarymesh.runtime.local.xds_status import NodeStatus, SyncState

__all__ = ["ControlPlane", "JsonDict"]

JsonDict = dict[str, object]
_SECTIONS = {
    "clusters": "dynamic_active_clusters",
    "listeners": "dynamic_listeners",
    "routes": "dynamic_route_configs",
    "secrets": "dynamic_active_secrets",
}


class ControlPlane:
    def __init__(self, store: Store, reconciler: Reconciler, info: JsonDict) -> None:
        self.store = store
        self.reconciler = reconciler
        self.info = info
        self._lock = asyncio.Lock()
        self.shutdown = asyncio.Event()

    async def change(
        self, texts: Sequence[DocumentText], delete: bool, wait: bool, timeout: float
    ) -> ChangeResult:
        """Apply (or delete) the documents of ``texts``."""
        started = time.perf_counter()
        documents: list[Document] = []
        for item in texts:
            documents += split_documents(item.text, item.source, item.namespace or None)
        async with self._lock:
            plan = self.store.plan_delete if delete else self.store.plan_apply
            after, changes = plan(documents)
            pushed: list[str] = []
            if after != self.store.documents:
                pushed = await self._reconcile(after)
        applied_ms = (time.perf_counter() - started) * 1000
        if wait:
            await self.wait_converged(timeout)
        return ChangeResult(
            lines=tuple(c.line for c in changes),
            pushed=tuple(pushed),
            applied_ms=applied_ms,
            converged_ms=(time.perf_counter() - started) * 1000,
        )

    async def _reconcile(self, after: dict[Key, Document]) -> list[str]:
        """Make the mesh run ``after`` and store it. Atomic: validated and translated, pushed,
        and stored only once no running proxy rejected it; a rejection takes the push back and
        stores nothing. Call with the lock held."""
        prepared = self.reconciler.prepare(after)
        staged = self.reconciler.stage(prepared)
        rejected = await self.reconciler.rejections(staged)
        if rejected:
            self.reconciler.restore(staged)
            raise ConfigError(_rejection_message(rejected))
        self.store.commit(after)
        await self.reconciler.finish(prepared)
        return staged.pushed

    async def config_canary(
        self, namespace: str, name: str, percent: float | None, promote: bool = False
    ) -> ConfigCanaryState:
        """Set a config canary's share of pods (None: none, everyone on the current config),
        or promote it: its changed documents become the applied config."""
        key = f"{namespace}/{name}"
        canaries = self.reconciler.config_canaries
        async with self._lock:
            documents = self.store.documents
            canary = next((d for d in documents.values() if _names(d) == (namespace, name)), None)
            changed = config_change_of(canary) if canary is not None else None
            if changed is None:
                raise ConfigError(f"no config canary {key}: apply a Canary with spec.config")
            before = canaries.shares.get(key)
            after = dict(documents)
            if promote:
                after, _ = self.store.plan_apply(changed)
                percent = None
            canaries.set_share(key, percent)
            try:
                pushed = await self._reconcile(after)
            except ConfigError:
                canaries.set_share(key, before)
                raise
        return self.config_canary_state(namespace, name, pushed)

    def config_canary_state(
        self, namespace: str, name: str, pushed: list[str] | None = None
    ) -> ConfigCanaryState:
        """Where a config canary stands: its share and the pods in each set."""
        key = f"{namespace}/{name}"
        percent = self.reconciler.config_canaries.shares.get(key)
        members = self.reconciler.config_members
        documents = self.store.documents
        canary = next((d for d in documents.values() if _names(d) == (namespace, name)), None)
        changed = config_change_of(canary) if canary is not None else None
        if changed is None:
            raise ConfigError(f"no config canary {key}: apply a Canary with spec.config")
        after, _ = self.store.plan_apply(changed)
        return ConfigCanaryState(
            canary=key,
            percent=percent,
            applied=after == documents,
            canary_pods=tuple(sorted(p for p, m in members.items() if m == (key, CONFIG_CANARY))),
            stable_pods=tuple(sorted(p for p, m in members.items() if m == (key, CONFIG_STABLE))),
            pushed=tuple(pushed or ()),
        )

    async def wait_converged(self, timeout: float) -> None:
        """Until every pod is ready and every proxy ACKed its latest config (or NACKed it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.converged():
            if loop.time() > deadline:
                blocking = self.unconverged()  # the words, only once they are needed
                if not blocking:
                    return
                raise TemporaryError(
                    f"the mesh did not converge in {timeout}s: {'; '.join(blocking)}", delay=1.0
                )
            await asyncio.sleep(0.002)

    def converged(self) -> bool:
        """Cheap, as it is polled every 2 ms during an apply: the first thing pending ends it."""
        reconciler = self.reconciler
        if reconciler.pusher.endpoint_pods != reconciler.ready_pods():
            return False  # a pod's readiness changed and its endpoints are not pushed yet
        status = reconciler.pusher.ads.status()
        for name in reconciler.runner.running:
            node = status.get(name)
            if node is None or not node.settled:
                return False
        return all(
            pod.ready == "2/2" or pod.status == "CrashLoopBackOff" for pod in self.pods().items
        )

    def unconverged(self) -> list[str]:
        """What the mesh still waits for, in words (empty once converged)."""
        reconciler = self.reconciler
        endpoints, ready = reconciler.pusher.endpoint_pods, reconciler.ready_pods()
        if endpoints != ready:
            # A pod's readiness changed and its endpoints are not pushed yet.
            changed = sorted(set(endpoints or ()) ^ set(ready))
            return [f"endpoints of {', '.join(changed)} not pushed yet"]
        blocking = []
        status = reconciler.pusher.ads.status()
        for name in sorted(reconciler.runner.running):
            node = status.get(name)
            if node is None or not node.connected:
                blocking.append(f"proxy {name} not connected")
            elif not node.settled:
                waiting = [
                    t.type_name
                    for t in node.types
                    if t.state in (SyncState.STALE, SyncState.NOT_SENT)
                ]
                blocking.append(f"proxy {name} has not ACKed {', '.join(waiting) or 'its config'}")
        blocking += [
            f"pod {pod.namespace}/{pod.name} is {pod.status} {pod.ready}"
            for pod in self.pods().items
            if pod.ready != "2/2" and pod.status != "CrashLoopBackOff"
        ]
        return blocking

    def pods(self) -> PodList:
        rows = pod_rows(self.reconciler.runner)
        return PodList(items=tuple(Pod.model_validate(row) for row in rows))

    def resources(
        self, kinds: Sequence[str], namespace: str | None, name: str | None
    ) -> ResourceList:
        items = [self._with_status(doc) for doc in self.store.select(kinds, namespace, name)]
        ingress = self.ingress_service()
        if (
            "service" in kinds
            and namespace in (None, "istio-system")
            and name in (None, INGRESS_NAME)
            and ingress is not None
        ):
            items.append(ingress)
        return ResourceList(items=tuple(items))

    def _with_status(self, doc: Document) -> Document:
        """A Service as the API server shows it: with the ClusterIP it was given."""
        addresses = self.reconciler.addresses
        if addresses is None or doc.get("kind") != "Service" or doc.get("apiVersion") != "v1":
            return doc
        meta = doc.get("metadata")
        spec = doc.get("spec")
        if not isinstance(meta, dict) or not isinstance(spec, dict):
            return doc
        key = f"{meta.get('namespace') or 'default'}/{meta.get('name')}"
        ip = addresses.assigned["service"].get(key)
        if ip is None or spec.get("clusterIP") == "None":
            return doc
        return {**doc, "spec": {**spec, "clusterIP": ip, "clusterIPs": [ip]}}

    def ingress_service(self) -> Document | None:
        """The ``istio-ingressgateway`` Service an Istio install has, so that the seed README's
        ``get svc istio-ingressgateway -n istio-system`` shows where the gateway listens: a
        LoadBalancer on 127.0.0.1 whose nodePort is the local port of each server port."""
        running = self.reconciler.runner.running.get(INGRESS_NAME)
        if running is None:
            return None
        gateway_ports = running.proxy.ports.gateway or (
            (8080, int(str(self.info.get("ingress_port")))),
        )
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": INGRESS_NAME,
                "namespace": "istio-system",
                "labels": dict(INGRESS_LABELS),
            },
            "spec": {
                "type": "LoadBalancer",
                "selector": dict(INGRESS_LABELS),
                "ports": [
                    {"name": f"http-{port}", "port": port, "nodePort": local, "protocol": "TCP"}
                    for port, local in gateway_ports
                ],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}},
        }

    def proxy_status(self) -> ProxyStatusList:
        status = self.reconciler.pusher.ads.status()
        return ProxyStatusList(
            proxies=tuple(
                _proxy_status(
                    name,
                    running.plan.name if running.plan else name,
                    running.proxy.namespace,
                    status.get(name),
                )
                for name, running in sorted(self.reconciler.runner.running.items())
            )
        )

    async def proxy_config(self, pod: str, section: str, namespace: str | None = None) -> JsonDict:
        running = find_pod(self.reconciler.runner, pod, namespace)
        admin_client = EnvoyAdmin(
            running.proxy.ports.admin, netns=running.place.netns_path, unix=running.admin_socket
        )
        async with admin_client as admin:
            if section == "stats":
                return {"text": await admin.stats_text()}
            if section == "endpoints":
                return await admin.clusters()
            if section == "all":
                return await admin.config_dump()
            if section not in _SECTIONS:
                raise ConfigError(f"unknown section {section!r}: {', '.join(_SECTIONS)}")
            dump = await admin.config_dump()
        items: list[object] = []
        for config in cast(list[JsonDict], dump.get("configs", [])):
            value = config.get(_SECTIONS[section])
            if isinstance(value, list):
                items += value
        return {"items": items}

    def exec_target(self, pod: str, namespace: str | None, container: str | None) -> ExecTarget:
        """What ``canarymesh exec`` needs to run a command as the container would: its network
        namespace, user, environment and working directory."""
        runner = self.reconciler.runner
        running = find_pod(runner, pod, namespace)
        plan = running.plan
        if plan is None:
            raise ConfigError(f"{pod} is a gateway: exec runs in pods")
        if container not in (None, plan.container):
            raise ConfigError(
                f"container {container!r} is not in pod {plan.name}: {plan.container}"
            )
        env = app_env(plan, running.proxy, self.reconciler.runner.base_env)
        return ExecTarget(
            pod=plan.name,
            namespace=plan.namespace,
            netns=running.place.netns,
            run_as=plan.run_as or None,
            env=env,
            cwd=plan.working_dir or str(running.place.pod_dir),
        )

    def logs(
        self, pod: str, container: str | None, tail: int | None, namespace: str | None = None
    ) -> Logs:
        running = find_pod(self.reconciler.runner, pod, namespace)
        children = container_statuses(self.reconciler.runner, running)
        if container in (None, "app"):
            apps = [name for name in children if name != "istio-proxy"]
            container = apps[0] if apps else "istio-proxy"
        if container not in children:
            raise ConfigError(
                f"container {container!r} is not in pod {pod}; choose one of {sorted(children)}"
            )
        name = children[container].name
        path = self.reconciler.runner.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        if tail is not None:
            text = "\n".join(text.splitlines()[-tail:]) + "\n"
        return Logs(text=text)

    def status(self) -> MeshStatus:
        control_plane = Component(
            name="control-plane",
            pid=_int(self.info.get("pid")),
            ready=True,
            phase="Running",
            restarts=_int(self.info.get("restarts")) or 0,
        )
        components = [
            control_plane,
            *(
                Component(
                    name=c.name,
                    pid=c.pid,
                    ready=c.ready,
                    phase=c.phase.value,
                    restarts=c.restarts,
                )
                for c in self.reconciler.runner.supervisor.status()
                if c.phase.value != "Stopped"
            ),
        ]
        gateways = [
            GatewayStatus.model_validate(row) for row in gateway_rows(self.reconciler.runner)
        ]
        unknown = sorted(set(self.info) - set(MeshStatus.model_fields))
        if unknown:  # a daemon fact the typed status would silently drop
            raise RuntimeError(f"MeshStatus has no field for {unknown}: add it to api_models.py")
        return MeshStatus.model_validate(
            {
                **self.info,
                "components": components,
                "gateways": gateways,
                "pods": len(pod_rows(self.reconciler.runner)),
            }
        )


def _names(document: Document) -> tuple[str, str]:
    meta = document.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    return str(meta.get("namespace") or "default"), str(meta.get("name"))


def _rejection_message(rejected: dict[str, str]) -> str:
    lines = [
        f"the change was refused by {len(rejected)} proxy(ies) and nothing was applied"
        " (every proxy keeps its previous config):"
    ]
    for proxy, reason in sorted(rejected.items()):
        lines.append(f"  {proxy}: {_envoy_reason(reason)}")
    return "\n".join(lines)


def _envoy_reason(message: str) -> str:
    """Envoy's rejection without the proto dump it embeds."""
    kept = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(kept) <= 1:
        return message.strip()
    return f"{kept[0]} ... {kept[-1]}"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _proxy_status(name: str, pod: str, namespace: str, node: NodeStatus | None) -> ProxyStatus:
    if node is None:
        return ProxyStatus(name=name, pod=pod, namespace=namespace, connected=False, synced=False)
    return ProxyStatus(
        name=name,
        pod=pod,
        namespace=namespace,
        connected=node.connected,
        synced=node.synced,
        version=node.snapshot_version,
        types={t.type_name: t.state.value for t in node.types},
        errors=node.errors,
    )
