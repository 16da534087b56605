"""The canary controller on a local mesh: its adapters, its process, and how the CLI finds it.

``python -m canarymesh.controller --state-dir D`` runs :func:`main`: it watches the Canaries of
the mesh through the control plane's API (as an operator watches the Kubernetes API), keeps
each rollout's record in ``D/rollouts`` and serves its metrics on a loopback port written to
``D/controller.json``. ``canarymesh rollout start`` (and ``demo``) call :func:`ensure_running`,
which starts it detached from the CLI when it is not running; an exclusive lock on
``D/controller.lock`` keeps it to one per mesh. It stops when the mesh's control plane stops
(``canarymesh down``), on SIGTERM, and can be SIGKILLed at any time: the records hold where every
rollout stands.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, cast

from prometheus_client import start_http_server
from pydantic import ValidationError

from canarymesh.api.canary import Canary, Webhook
from canarymesh.api.durations import parse_duration
from canarymesh.controller.loop import Controller
from canarymesh.controller.observe import fqdn
from canarymesh.controller.sources import CanaryItem, Wiring
from canarymesh.controller.telemetry import ControllerMetrics
from canarymesh.errors import CanaryMeshError, TemporaryError
from canarymesh.rollout.machine import WebhookResult
from canarymesh.runtime.local.api_client import ApiClient, daemon_info, pid_alive
from canarymesh.runtime.local.loadgen import LoadGenerator, loopback_target
from canarymesh.runtime.local.metrics_source import PrometheusSource
from canarymesh.runtime.local.prometheus import (
    CONTROLLER_JOB,
    TargetGroup,
    targets_dir,
    targets_path,
    write_targets,
)
from canarymesh.runtime.local.rollout_store import RolloutStore
from canarymesh.runtime.local.router import LocalRouter

__all__ = [
    "CANARY_KIND",
    "CONTROLLER_FILE",
    "ROLLOUT_ID",
    "controller_info",
    "ensure_running",
    "main",
]

log = logging.getLogger("canarymesh.controller")

CANARY_KIND = "canary.canarymesh.io"
DR_KIND = "destinationrule.networking.istio.io"
ROLLOUT_ID = "canarymesh.io/rollout-id"
CONTROLLER_FILE = "controller.json"
LOCK_FILE = "controller.lock"
_SPAWNED: list[subprocess.Popen[bytes]] = []
LOAD_LIMIT = 3600.0  # seconds: the built-in load generator never runs longer than this


class SystemClock:
    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class LocalCanaries:
    """The Canaries applied to the mesh, with each subset's ``version`` label."""

    def __init__(self, api: ApiClient) -> None:
        self.api = api

    def list(self) -> tuple[CanaryItem, ...]:
        docs = cast(
            list[dict[str, Any]], self.api.get("/v1/resources", {"kinds": CANARY_KIND})["items"]
        )
        items = []
        for doc in docs:
            meta = doc.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or "default"), str(meta.get("name"))
            try:
                canary = Canary.model_validate(doc.get("spec") or {})
            except ValidationError as err:
                log.error("Canary %s/%s cannot be read: %s", namespace, name, err)
                continue
            rollout_id = str((meta.get("annotations") or {}).get(ROLLOUT_ID, "applied"))
            versions = self._versions(canary, namespace)
            items.append(CanaryItem(namespace, name, rollout_id, canary, versions))
        return tuple(items)

    def _versions(self, canary: Canary, namespace: str) -> tuple[tuple[str, str], ...]:
        query = {"kinds": DR_KIND, "namespace": namespace}
        rules = cast(list[dict[str, Any]], self.api.get("/v1/resources", query)["items"])
        host = fqdn(canary.target.host, namespace)
        found = []
        for rule in rules:
            spec = rule.get("spec") or {}
            if fqdn(str(spec.get("host", "")), namespace) != host:
                continue
            for subset in spec.get("subsets") or []:
                version = (subset.get("labels") or {}).get("version")
                if version:
                    found.append((str(subset["name"]), str(version)))
        return tuple(found)


class HttpWebhooks:
    """POSTs Flagger's payload (name, namespace, phase, metadata); 2xx means go on."""

    def call(self, item: CanaryItem, hook: Webhook, phase: str) -> WebhookResult:
        body = {"name": item.name, "namespace": item.namespace, "phase": phase,
                "metadata": dict(hook.metadata)}  # fmt: skip
        request = urllib.request.Request(
            hook.url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        timeout = parse_duration(hook.timeout) or datetime.timedelta(seconds=10)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout.total_seconds()) as response:
                return WebhookResult(hook.name, 200 <= response.status < 300, str(response.status))
        except OSError as err:
            return WebhookResult(hook.name, False, str(err))


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


def wiring_for(state_dir: Path, metrics: ControllerMetrics) -> tuple[Wiring, LocalLoad]:
    api = ApiClient.for_state_dir(state_dir, timeout=30.0)
    info = daemon_info(state_dir) or {}
    prometheus = str(info.get("prometheus_url") or "http://127.0.0.1:9")
    load = LocalLoad(cast(str | None, info.get("ingress_url")))
    store = RolloutStore(state_dir)
    wiring = Wiring(
        canaries=LocalCanaries(api),
        router_for=lambda item: LocalRouter(api, item.namespace, item.name),
        metrics=PrometheusSource(prometheus),
        store=store,
        clock=SystemClock(),
        inbox=store,
        webhooks=HttpWebhooks(),
        load=load,
        sink=metrics,
    )
    return wiring, load


# --- the process ------------------------------------------------------------------------------


def controller_info(state_dir: Path) -> dict[str, Any] | None:
    """``controller.json`` of the running controller, or None."""
    try:
        info = json.loads((state_dir / CONTROLLER_FILE).read_text())
    except (OSError, ValueError):
        return None
    pid = info.get("pid") if isinstance(info, dict) else None
    return info if isinstance(pid, int) and pid_alive(pid) else None


def ensure_running(state_dir: Path, timeout: float = 10.0) -> int:
    """The pid of the mesh's controller, started (detached from the caller) when needed."""
    info = controller_info(state_dir)
    if info is not None:
        return int(info["pid"])
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "canary-controller.log").open("a") as output:
        argv = [sys.executable, "-m", "canarymesh.controller", "--state-dir", str(state_dir)]
        # Kept referenced: the controller outlives this call (and usually this process).
        _SPAWNED.append(subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL, start_new_session=True))  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = controller_info(state_dir)
        if info is not None:
            return int(info["pid"])
        time.sleep(0.05)
    raise TemporaryError(f"the canary controller did not start; see {log_dir}", delay=1.0)


def _lock(state_dir: Path) -> IO[str] | None:
    handle = (state_dir / LOCK_FILE).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m canarymesh.controller")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--tick", type=float, default=0.25, help="seconds between passes")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    state_dir: Path = args.state_dir.resolve()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lock = _lock(state_dir)
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
        (state_dir / CONTROLLER_FILE).unlink(missing_ok=True)
        lock.close()


def _serve(state_dir: Path, tick: float, stop: threading.Event) -> int:
    metrics = ControllerMetrics()
    server, _ = start_http_server(0, addr="127.0.0.1", registry=metrics.registry)
    wiring, load = wiring_for(state_dir, metrics)
    info = {"pid": os.getpid(), "metrics_url": f"http://127.0.0.1:{server.server_port}/metrics"}
    tmp = state_dir / f".{CONTROLLER_FILE}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, state_dir / CONTROLLER_FILE)
    _publish_target(state_dir, f"127.0.0.1:{server.server_port}")
    log.info("canary controller up (pid %d), watching %s", os.getpid(), state_dir)
    try:
        Controller(wiring).run(lambda: stop.is_set() or daemon_info(state_dir) is None, tick)
    finally:
        load.stop_all()
        if isinstance(wiring.metrics, PrometheusSource):
            wiring.metrics.close()
        _publish_target(state_dir, None)
        server.shutdown()
    log.info("canary controller stopped")
    return 0


def _publish_target(state_dir: Path, address: str | None) -> None:
    """Let the mesh's Prometheus scrape (or stop scraping) this controller's metrics."""
    sd_dir = targets_dir(state_dir)
    if not sd_dir.is_dir():
        return  # the mesh runs without Prometheus
    groups = [TargetGroup((address,), {"app": "canarymesh-controller"})] if address else []
    write_targets(targets_path(sd_dir, CONTROLLER_JOB), groups)
