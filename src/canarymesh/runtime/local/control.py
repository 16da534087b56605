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
from canarymesh.runtime.local.api_models import (
    ChangeResult,
    Component,
    DocumentText,
    GatewayStatus,
    Logs,
    MeshStatus,
    Pod,
    PodList,
    ProxyStatus,
    ProxyStatusList,
    ResourceList,
)
from canarymesh.runtime.local.envoy import EnvoyAdmin
from canarymesh.runtime.local.reconcile import Reconciler
from canarymesh.runtime.local.store import Document, Store, split_documents
from canarymesh.runtime.local.xds_status import NodeStatus

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
                prepared = self.reconciler.prepare(after)
                self.store.commit(after)
                pushed = await self.reconciler.realise(prepared)
        applied_ms = (time.perf_counter() - started) * 1000
        if wait:
            await self.wait_converged(timeout)
        return ChangeResult(
            lines=tuple(c.line for c in changes),
            pushed=tuple(pushed),
            applied_ms=applied_ms,
            converged_ms=(time.perf_counter() - started) * 1000,
        )

    async def wait_converged(self, timeout: float) -> None:
        """Until every pod is ready and every proxy ACKed its latest config (or NACKed it)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.converged():
            if loop.time() > deadline:
                raise TemporaryError(f"the mesh did not converge in {timeout}s", delay=1.0)
            await asyncio.sleep(0.002)

    def converged(self) -> bool:
        reconciler = self.reconciler
        if reconciler.endpoint_pods != reconciler.ready_pods():
            return False  # a pod's readiness changed and its endpoints are not pushed yet
        status = self.reconciler.ads.status()
        for name in self.reconciler.running:
            node = status.get(name)
            if node is None or not node.settled:
                return False
        return all(
            pod.ready == "2/2" or pod.status == "CrashLoopBackOff" for pod in self.pods().items
        )

    def pods(self) -> PodList:
        return PodList(items=tuple(Pod.model_validate(row) for row in self.reconciler.pod_rows()))

    def resources(
        self, kinds: Sequence[str], namespace: str | None, name: str | None
    ) -> ResourceList:
        items = self.store.select(kinds, namespace, name)
        ingress = self.ingress_service()
        if (
            "service" in kinds
            and namespace in (None, "istio-system")
            and name in (None, INGRESS_NAME)
            and ingress is not None
        ):
            items.append(ingress)
        return ResourceList(items=tuple(items))

    def ingress_service(self) -> Document | None:
        """The ``istio-ingressgateway`` Service an Istio install has, so that the seed README's
        ``get svc istio-ingressgateway -n istio-system`` shows where the gateway listens: a
        LoadBalancer on 127.0.0.1 whose nodePort is the local port of each server port."""
        running = self.reconciler.running.get(INGRESS_NAME)
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
        status = self.reconciler.ads.status()
        return ProxyStatusList(
            proxies=tuple(
                _proxy_status(name, running.proxy.namespace, status.get(name))
                for name, running in sorted(self.reconciler.running.items())
            )
        )

    async def proxy_config(self, pod: str, section: str) -> JsonDict:
        running = self.reconciler.running.get(pod)
        if running is None:
            raise ConfigError(f"no proxy named {pod!r}; see `canarymesh proxy-status`")
        async with EnvoyAdmin(running.proxy.ports.admin) as admin:
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

    def logs(self, pod: str, container: str | None, tail: int | None) -> Logs:
        children = self.reconciler.containers_of(pod)
        if container in (None, "app"):
            apps = [name for name in children if name != "istio-proxy"]
            container = apps[0] if apps else "istio-proxy"
        if container not in children:
            raise ConfigError(
                f"container {container!r} is not in pod {pod}; choose one of {sorted(children)}"
            )
        name = children[container].name
        path = self.reconciler.log_dir / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        if tail is not None:
            text = "\n".join(text.splitlines()[-tail:]) + "\n"
        return Logs(text=text)

    def status(self) -> MeshStatus:
        control_plane = Component(name="control-plane", pid=_int(self.info.get("pid")), ready=True)
        components = [
            control_plane,
            *(
                Component(name=c.name, pid=c.pid, ready=c.ready, phase=c.phase.value)
                for c in self.reconciler.supervisor.status()
                if c.phase.value != "Stopped"
            ),
        ]
        return MeshStatus.model_validate(
            {
                **self.info,
                "components": components,
                "gateways": [
                    GatewayStatus.model_validate(row) for row in self.reconciler.gateway_rows()
                ],
                "pods": len(self.reconciler.pod_rows()),
            }
        )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _proxy_status(name: str, namespace: str, node: NodeStatus | None) -> ProxyStatus:
    if node is None:
        return ProxyStatus(name=name, namespace=namespace, connected=False, synced=False)
    return ProxyStatus(
        name=name,
        namespace=namespace,
        connected=node.connected,
        synced=node.synced,
        version=node.snapshot_version,
        types={t.type_name: t.state.value for t in node.types},
        errors=node.errors,
    )
