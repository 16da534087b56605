"""The local control plane's API in process, with no processes behind it: the real
:class:`~canarymesh.runtime.local.api_server.ApiServer`, :class:`~canarymesh.runtime.local.
control.ControlPlane` and :class:`~canarymesh.runtime.local.store.Store` on 127.0.0.1, over a
reconciler stand-in that starts nothing. Its proxies are what a test declares, and each apply
leaves them not yet synced until :meth:`LocalControlPlane.settle` (as Envoys ACK a push), so
clients (the local router, the CLI's API client) are tested over real HTTP and real models.

For the reconciler itself and real Envoys, see the integration tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace, TracebackType

from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_server import ApiServer
from canarymesh.runtime.local.codec import ROUTE
from canarymesh.runtime.local.control import ControlPlane
from canarymesh.runtime.local.store import Document, Key, Store
from canarymesh.runtime.local.xds_status import NodeStatus, TypeStatus

TOKEN = "test-token"


class NoProcesses:
    """The parts of the reconciler the control plane calls, with nothing to run: no pods (so no
    pod rows), proxies only as a test declares them, on the shared host network."""

    def __init__(self, state_dir: Path) -> None:
        self.nodes: dict[str, NodeStatus] = {}
        self.version = 0
        self.addresses = None  # the shared network: no pod or service IPs
        self.runner = SimpleNamespace(
            running={},
            supervisor=SimpleNamespace(status=lambda: []),
            log_dir=state_dir / "logs",
            started=lambda name: False,
        )
        self.pusher = SimpleNamespace(
            ads=SimpleNamespace(status=lambda: dict(self.nodes)), endpoint_pods=frozenset()
        )

    def prepare(self, documents: Mapping[Key, Document]) -> Mapping[Key, Document]:
        return documents

    def stage(self, prepared: object) -> SimpleNamespace:
        self.version += 1  # a push: every proxy is sent it and has not ACKed it yet
        for name in self.nodes:
            self.nodes[name] = _node(name, self.version, acked=self.version - 1)
        return SimpleNamespace(pushed=sorted(self.nodes))

    async def rejections(self, staged: object) -> dict[str, str]:
        return {}  # no Envoy here to NACK

    def restore(self, staged: object) -> None:
        raise AssertionError("nothing was rejected, nothing to restore")

    async def finish(self, prepared: object) -> None:
        return None

    def settle(self) -> None:
        for name in self.nodes:
            self.nodes[name] = _node(name, self.version, acked=self.version)

    def add_proxy(self, name: str, namespace: str) -> None:
        """A connected proxy (a gateway's, as no pod runs here), synced with the last push."""
        ports = SimpleNamespace(admin=15000, gateway=())
        proxy = SimpleNamespace(id=name, namespace=namespace, ip=None, ports=ports)
        self.runner.running[name] = SimpleNamespace(plan=None, proxy=proxy)
        self.nodes[name] = _node(name, self.version, acked=self.version)

    def ready_pods(self) -> frozenset[str]:
        return frozenset()


def _node(name: str, version: int, acked: int) -> NodeStatus:
    route = TypeStatus(ROUTE, str(version), str(version), str(acked), None, None)
    return NodeStatus(name, str(version), True, (route,))


class LocalControlPlane:
    """``with LocalControlPlane(tmp_path) as plane:`` serves the API; ``plane.api`` calls it."""

    def __init__(self, state_dir: Path) -> None:
        self.reconciler = NoProcesses(state_dir)
        self.info: dict[str, object] = {
            "pid": 4242,
            "state_dir": str(state_dir),
            "ads": "127.0.0.1:1",
            "ingress_port": 8080,
            "ingress_url": "http://127.0.0.1:8080",
            "prometheus_url": None,
            "tracing_url": None,
        }
        store = Store(state_dir / "store.json")
        self.control = ControlPlane(store, self.reconciler, self.info)  # type: ignore[arg-type]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.api = ApiClient(0, TOKEN, timeout=10.0)

    def __enter__(self) -> LocalControlPlane:
        self._thread.start()
        self._server = ApiServer(self.control, TOKEN)
        port = asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(10)
        self.info["api_port"] = port
        self.api = ApiClient(port, TOKEN, timeout=10.0)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def settle(self) -> None:
        self.reconciler.settle()
