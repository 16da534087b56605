"""The canary controller on a local mesh: its adapters and its process.

``python -m canarymesh.controller --state-dir D`` runs :func:`main`: it watches the Canaries of
the mesh through the control plane's API (as an operator watches the Kubernetes API), keeps
each rollout's record in ``D/rollouts`` and serves its metrics on a loopback port written to
``D/controller.json``. ``canarymesh rollout start`` (and ``demo``, and the dashboard's actions)
start it through :func:`canarymesh.runtime.local.controller_process.ensure_running` when it is
not running; an exclusive lock on ``D/controller.lock`` keeps it to one per mesh. It stops when
the mesh's control plane stops (``canarymesh down``), on SIGTERM, and can be SIGKILLed at any
time: the records hold where every rollout stands.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client import start_http_server
from pydantic import ValidationError

from canarymesh.api.canary import ROLLOUT_ID_ANNOTATION, Canary
from canarymesh.controller.loop import Controller
from canarymesh.controller.metrics import ControllerMetrics
from canarymesh.controller.notify import Notifier, NotifyMetrics
from canarymesh.controller.observe import subset_versions
from canarymesh.controller.webhooks import HttpWebhooks
from canarymesh.controller.wiring import (
    CanaryItem,
    DecisionSinks,
    ProviderItem,
    Wiring,
    canary_item,
    provider_items,
)
from canarymesh.errors import CanaryMeshError
from canarymesh.ports import TrafficRouter
from canarymesh.ports.clock import SystemClock
from canarymesh.ports.load import LoadGenerator, loopback_target
from canarymesh.ports.prometheus import PrometheusSource
from canarymesh.runtime.local.api_client import ApiClient, daemon_info
from canarymesh.runtime.local.api_models import (
    ALERT_PROVIDER_KIND,
    CANARY_KIND,
    DESTINATION_RULE_KIND,
    SECRET_KIND,
    MeshStatus,
)
from canarymesh.runtime.local.config_router import LocalConfigRouter
from canarymesh.runtime.local.controller_process import publish_info, take_lock
from canarymesh.runtime.local.group_router import LocalGroupRouter
from canarymesh.runtime.local.prometheus import (
    CONTROLLER_JOB,
    TargetGroup,
    targets_dir,
    targets_path,
    write_targets,
)
from canarymesh.runtime.local.rollout_store import RolloutStore
from canarymesh.runtime.local.router import LocalRouter

__all__ = ["LocalCanaries", "LocalLoad", "LocalProviders", "main", "wiring_for"]

log = logging.getLogger("canarymesh.controller")

LOAD_LIMIT = 3600.0  # seconds: the built-in load generator never runs longer than this


class LocalCanaries:
    """The Canaries applied to the mesh, with each subset's ``version`` label."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def list(self) -> tuple[CanaryItem, ...]:
        items = []
        for doc in self.api.resources([CANARY_KIND]):
            meta = doc.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
            try:
                canary = Canary.model_validate(doc.get("spec") or {})
            except ValidationError as err:
                log.error("Canary %s/%s cannot be read: %s", namespace, name, err)
                continue
            rollout_id = str((meta.get("annotations") or {}).get(ROLLOUT_ID_ANNOTATION, "applied"))
            versions = self._versions(canary, namespace)
            items.append(canary_item(namespace, name, rollout_id, canary, versions, "local"))
        return tuple(items)

    def _versions(self, canary: Canary, namespace: str) -> tuple[tuple[str, str], ...]:
        if canary.config is not None:
            return ()  # its sets are named canary and stable; no subset to look up
        rules = self.api.resources([DESTINATION_RULE_KIND], namespace)
        return subset_versions(rules, canary, namespace)


class LocalProviders:
    """The notifier's AlertProviders and Secrets, read from the mesh's store."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def providers(self) -> tuple[ProviderItem, ...]:
        return provider_items(self.api.resources([ALERT_PROVIDER_KIND]))

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        found = [
            d
            for d in self.api.resources([SECRET_KIND], namespace, name)
            if (d.get("metadata") or {}).get("namespace") == namespace
        ]
        if not found:
            return None
        data: dict[str, bytes] = {}
        for key, value in (found[0].get("data") or {}).items():
            try:
                data[str(key)] = base64.b64decode(str(value), validate=True)
            except binascii.Error:
                log.error("Secret %s/%s: key %s is not base64", namespace, name, key)
        for key, value in (found[0].get("stringData") or {}).items():
            data[str(key)] = str(value).encode()
        return data


class LocalLoad:
    """One built-in load generator per rollout, sent through the mesh's ingress."""

    def __init__(self, ingress_url: str | None) -> None:
        self.ingress_url = ingress_url
        self.running: dict[str, LoadGenerator] = {}

    def start(self, item: CanaryItem) -> None:
        spec = item.canary.load_generator
        if spec is None or item.key in self.running:
            return
        url, headers = loopback_target(spec.url, self.ingress_url)
        generator = LoadGenerator(url, float(spec.rps), LOAD_LIMIT, {**spec.headers, **headers})
        self.running[item.key] = generator.start()

    def stop(self, key: str) -> None:
        generator = self.running.pop(key, None)
        if generator is not None:
            generator.stop()

    def stop_all(self) -> None:
        for key in list(self.running):
            self.stop(key)


def wiring_for(state_dir: Path, metrics: ControllerMetrics) -> tuple[Wiring, LocalLoad, Notifier]:
    """The loop's wiring, the load generators and the notifier (to stop them at the end)."""
    api = ApiClient.for_state_dir(state_dir, timeout=30.0)
    info = daemon_info(state_dir)  # daemon.json: the mesh's status without its components
    mesh = MeshStatus.model_validate(info) if info is not None else None
    prometheus = (mesh.prometheus_url if mesh else None) or "http://127.0.0.1:9"
    load = LocalLoad(mesh.ingress_url if mesh else None)
    store = RolloutStore(state_dir)
    # Its own client: the notifier reads providers and Secrets on its thread.
    providers = LocalProviders(ApiClient.for_state_dir(state_dir, timeout=10.0))
    notifier = Notifier(providers, NotifyMetrics(metrics.registry), SystemClock())
    wiring = Wiring(
        canaries=LocalCanaries(api),
        router_for=lambda item: _router(api, item),
        metrics=PrometheusSource(prometheus, timeout=3.0),
        store=store,
        clock=SystemClock(),
        inbox=store,
        webhooks=HttpWebhooks(),
        load=load,
        sink=DecisionSinks(metrics, notifier),
    )
    return wiring, load, notifier


def _router(api: ApiClient, item: CanaryItem) -> TrafficRouter:
    if item.canary.config is not None:
        return LocalConfigRouter(api, item.namespace, item.name)
    if item.canary.group is not None:
        return LocalGroupRouter(api, item.namespace, item.name)
    return LocalRouter(api, item.namespace, item.name)


# --- the process ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m canarymesh.controller")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--tick", type=float, default=0.25, help="seconds between passes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lock = take_lock(state_dir)
    if lock is None:
        return 0  # another controller runs for this mesh
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        return _serve(state_dir, args.tick, stop)
    except CanaryMeshError as err:
        log.error("canary controller: %s", err)
        return 2
    finally:
        publish_info(state_dir, None)
        lock.close()


def _serve(state_dir: Path, tick: float, stop: threading.Event) -> int:
    metrics = ControllerMetrics()
    server, _ = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    wiring, load, notifier = wiring_for(state_dir, metrics)
    notifier.start()
    info = {"pid": os.getpid(), "metrics_url": f"http://127.0.0.1:{server.server_port}/metrics"}
    publish_info(state_dir, info)
    _publish_target(state_dir, f"127.0.0.1:{server.server_port}")
    log.info("canary controller up (pid %d), watching %s", os.getpid(), state_dir)
    try:
        gone = _MeshWatch(state_dir)
        Controller(wiring).run(lambda: stop.is_set() or gone(), tick)
    finally:
        load.stop_all()
        notifier.stop()
        _publish_target(state_dir, None)
        server.shutdown()
    log.info("canary controller stopped")
    return 0


class _MeshWatch:
    """True once the mesh's control plane has been gone for ``grace`` seconds: a restart (the
    keeper brings a killed one back in about a second) is waited out, a mesh taken down is not
    (``down`` stops this process itself; this is the fallback)."""

    def __init__(self, state_dir: Path, grace: float = 60.0) -> None:
        self.state_dir, self.grace = state_dir, grace
        self.seen = time.monotonic()

    def __call__(self) -> bool:
        if daemon_info(self.state_dir) is not None:
            self.seen = time.monotonic()
            return False
        return time.monotonic() - self.seen > self.grace


def _publish_target(state_dir: Path, address: str | None) -> None:
    """Let the mesh's Prometheus scrape (or stop scraping) this controller's metrics."""
    sd_dir = targets_dir(state_dir)
    if not sd_dir.is_dir():
        return  # the mesh runs without Prometheus
    groups = [TargetGroup((address,), {"app": "canarymesh-controller"})] if address else []
    write_targets(targets_path(sd_dir, CONTROLLER_JOB), groups)
