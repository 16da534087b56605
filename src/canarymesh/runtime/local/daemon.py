"""The local control plane process: ``python -m canarymesh.runtime.local.daemon --state-dir D``.

Started in the background by ``canarymesh up`` under a keeper
(:mod:`canarymesh.runtime.local.keeper`, which restarts it if it dies). It runs, in one event
loop: the ADS server, the supervisor of every child (Prometheus, the ingress gateway's Envoy,
each pod's app and sidecar), the CA, and the local API. Once all of that is ready it writes
``<state_dir>/daemon.json`` (pid, ports, URLs), which is what ``up`` waits for.

SIGTERM, SIGINT or ``POST /v1/shutdown`` stop every child and remove the pod network. A crash
stops nothing: pods, gateways and Prometheus are detached children, and keep serving with their
last config. The next control plane (the keeper starts one within a second) adopts every one of
them that still runs from the same spec, without restarting it: the same ports (kept in
``ports.json``), the same addresses, the same tokens and the same config, so Envoy reconnects to
the ADS socket and finds nothing to change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from canarymesh.errors import CanaryMeshError, TemporaryError
from canarymesh.mesh.build import INGRESS_NAME
from canarymesh.mesh.capture import PROXY_GID, PROXY_UID
from canarymesh.mesh.model import MeshSettings
from canarymesh.runtime.local.addresses import (
    DEFAULT_POD_CIDR,
    DEFAULT_SERVICE_CIDR,
    AddressBook,
)
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.runtime.local.api_client import DAEMON_FILE, TOKEN_FILE
from canarymesh.runtime.local.api_server import ApiServer, write_token
from canarymesh.runtime.local.ca import LocalCA
from canarymesh.runtime.local.child_records import recorded_children
from canarymesh.runtime.local.config_canaries import ConfigCanaries
from canarymesh.runtime.local.control import ControlPlane
from canarymesh.runtime.local.credentials import ALS_PURPOSE, XDS_PURPOSE, MeshCredentials
from canarymesh.runtime.local.envoy import binary_for_proxy_user, envoy_binary
from canarymesh.runtime.local.identities import Identities
from canarymesh.runtime.local.keeper import ALREADY_RUNNING, hold_lock
from canarymesh.runtime.local.local_ports import PortBook, PortRecord
from canarymesh.runtime.local.pod_lifecycle import PodRunner, admin_dir, sidecar_name
from canarymesh.runtime.local.podnet import RUN_ROOT, PodNetworks, mesh_id
from canarymesh.runtime.local.pods import app_base_env
from canarymesh.runtime.local.prometheus import CONTROLLER_JOB, LocalPrometheus, ScrapeJob
from canarymesh.runtime.local.pushes import Pusher
from canarymesh.runtime.local.reconcile import ENVOY_JOB, TELEMETRY_JOB, Reconciler
from canarymesh.runtime.local.scrape_proxy import scrape_proxy_spec
from canarymesh.runtime.local.store import Store
from canarymesh.runtime.local.supervisor import ProcessSpec, Supervisor
from canarymesh.runtime.local.telemetry import TelemetryCollector
from canarymesh.runtime.local.tracing import TracingCollector

__all__ = ["CHILDREN_FILE", "DROP_HISTOGRAMS", "main", "run", "run_dir_of"]

ADDRESSES_FILE = "addresses.json"
SECRET_FILE = "mesh-secret"
CHILDREN_FILE = "children.json"
PORTS_FILE = "ports.json"
DAEMON_LOCK = "daemon.lock"

# Connection-level histograms nobody queries: a third of Envoy's series, and Prometheus' memory
# grows with series. Request histograms (upstream_rq_time, downstream_rq_time) are kept.
DROP_HISTOGRAMS = {
    "source_labels": ["__name__"],
    "regex": "envoy_(cluster_upstream_cx_connect_ms|cluster_upstream_cx_length_ms"
    "|cluster_upstream_rq_per_cx|http_downstream_cx_length_ms)_(bucket|sum|count)",
    "action": "drop",
}


def _percent(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"{text}: a percentage is 0 to 100")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m canarymesh.runtime.local.daemon")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--ingress-port", type=int, default=8080)
    parser.add_argument("--restart-backoff", type=float, default=0.5)
    parser.add_argument("--scrape-interval", default="1s")
    parser.add_argument("--no-prometheus", action="store_true")
    parser.add_argument("--network", choices=("pod", "host"), default="host")
    parser.add_argument("--pod-cidr", default=DEFAULT_POD_CIDR)
    parser.add_argument("--service-cidr", default=DEFAULT_SERVICE_CIDR)
    parser.add_argument("--trace-sampling", type=_percent, default=MeshSettings().tracing_sampling)
    return parser.parse_args(argv)


def run_dir_of(state_dir: Path) -> Path:
    """Where the proxies' files and sockets live: a directory the proxy user can traverse even
    when the state directory is under a private home (root's is 0700)."""
    return RUN_ROOT / mesh_id(state_dir)  # podnet.remove_pod_network removes it too


def make_run_dir(path: Path) -> Path:
    # root:1337, 0710: the sidecars (group 1337) may reach their own files inside, no one lists.
    for directory in (path, path / "proxies"):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, 0, PROXY_GID)
        os.chmod(directory, 0o710)
    return path


async def _bind(ports: PortRecord, name: str, start: Callable[..., Awaitable[int]]) -> int:
    """Start a server on the port it had before a restart, or on a new one if that is taken."""
    try:
        port = await start(port=ports.reuse(name))
    except (TemporaryError, OSError):
        port = await start(port=0)
    return ports.bound(name, port)


class Shutdown(Exception):
    """A requested stop (``down``): every child stops, the pod network goes."""


class AlreadyRunning(CanaryMeshError):
    """Another control plane holds the state directory."""


async def run(args: argparse.Namespace) -> None:
    state_dir: Path = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = hold_lock(state_dir / DAEMON_LOCK)
    if lock is None:
        raise AlreadyRunning(f"another control plane runs for {state_dir}")
    (state_dir / DAEMON_FILE).unlink(missing_ok=True)
    # Children an earlier control plane left running: adopt them, keep their network.
    adopting = bool(recorded_children(state_dir / CHILDREN_FILE))
    pod_network = args.network == "pod"
    addresses = network = None
    run_dir = state_dir
    owner = None
    if pod_network:
        addresses = AddressBook.load(state_dir / ADDRESSES_FILE, args.pod_cidr, args.service_cidr)
        network = PodNetworks(state_dir, addresses.pod_cidr, addresses.nameserver)
        await network.start(adopt=adopting)
        run_dir = make_run_dir(run_dir_of(state_dir))
        owner = (PROXY_UID, PROXY_GID)
    supervisor = Supervisor(records=state_dir / CHILDREN_FILE)
    try:
        await serve(args, state_dir, run_dir, addresses, network, owner, supervisor)
    except Shutdown:
        await supervisor.stop_all()
        if network is not None:
            await network.stop()
        if pod_network:
            shutil.rmtree(run_dir, ignore_errors=True)
        shutil.rmtree(admin_dir(state_dir), ignore_errors=True)
        (state_dir / PORTS_FILE).unlink(missing_ok=True)
        (state_dir / TOKEN_FILE).unlink(missing_ok=True)


CONTROLLER = "canary-controller"


def controller_spec(state_dir: Path, backoff: float) -> ProcessSpec:
    """The mesh's canary controller as a supervised, detached process (its environment fixed,
    so a restarted control plane recognises, and adopts, the one that kept running)."""
    return ProcessSpec(
        name=CONTROLLER,
        argv=[sys.executable, "-m", "canarymesh.controller", "--state-dir", str(state_dir)],
        log_path=state_dir / "logs" / f"{CONTROLLER}.log",
        env={**app_base_env(), "PYTHONUNBUFFERED": "1"},
        detached=True,
        backoff_initial=backoff,
        backoff_max=5.0,
        stop_grace=5.0,
    )


async def start_or_adopt(supervisor: Supervisor, spec: ProcessSpec) -> None:
    if not supervisor.adopt(spec):
        await supervisor.start(spec, ready_timeout=None)


async def serve(
    args: argparse.Namespace,
    state_dir: Path,
    run_dir: Path,
    addresses: AddressBook | None,
    network: PodNetworks | None,
    owner: tuple[int, int] | None,
    supervisor: Supervisor,
) -> None:
    """Serve until a requested stop (raises :class:`Shutdown`); any other exit leaves the
    children running for the next control plane."""
    ports = PortRecord.load(state_dir / PORTS_FILE)
    # The shared network's app and sidecar ports, kept while there are pods to adopt.
    local_ports = PortBook.load(
        state_dir / "local-ports.json", keep=bool(recorded_children(state_dir / CHILDREN_FILE))
    )
    # Prometheus first: it starts while the rest is set up.
    prometheus = None
    scrape_port = ports.reuse("scrape")
    if not args.no_prometheus:
        proxy_url = f"http://127.0.0.1:{scrape_port}" if network is not None else None
        jobs = [
            ScrapeJob(
                ENVOY_JOB,
                "/stats/prometheus",
                metric_relabel_configs=(DROP_HISTOGRAMS,),
                proxy_url=proxy_url,
            ),
            ScrapeJob(TELEMETRY_JOB),
            # The canary controller writes its own target into this job's file_sd file.
            ScrapeJob(CONTROLLER_JOB),
        ]
        prometheus = LocalPrometheus(
            state_dir,
            jobs,
            ports.reuse("prometheus"),
            scrape_interval=args.scrape_interval,
            detached=True,
        )
        await start_or_adopt(supervisor, prometheus.spec())
    if network is not None and not args.no_prometheus:
        spec = scrape_proxy_spec(
            run_dir, state_dir / "logs", scrape_port, network.node, network.host_netns
        )
        await start_or_adopt(supervisor, spec)
    credentials = MeshCredentials.load_or_create(state_dir / SECRET_FILE)
    ads = AdsServer(lambda token, node: credentials.verify(XDS_PURPOSE, node, token))
    collector = TelemetryCollector(
        lambda node: reconciler.peers.get(node),
        addresses=lambda address: reconciler.inbound_peers.get(address),
        services=lambda node: reconciler.services_of.get(node),
        pod_network=network is not None,
        authenticate=lambda token, node: credentials.verify(ALS_PURPOSE, node, token),
        known=lambda: reconciler.known_workloads,
        config_set=lambda node: reconciler.config_members.get(node),
    )
    tracing = TracingCollector()
    tracing_port = await _bind(ports, "tracing", tracing.start)
    xds: int | str
    if network is not None:
        xds = await ads.start_unix(run_dir / "xds.sock", owner)
        tracing.spans_from_unix_only = True
        settings = MeshSettings(
            telemetry_socket=await collector.start_unix(run_dir / "als.sock", owner),
            tracing_socket=await tracing.start_unix(run_dir / "zipkin.sock", owner),
            host_netns=network.host_netns,
            tracing_sampling=args.trace_sampling,
        )
        envoy = binary_for_proxy_user(envoy_binary(), run_dir)
    else:
        # The proxies' bootstraps name this port: a restarted control plane must keep it.
        xds = await _bind(ports, "ads", ads.start)
        # Access logs on a 0600 socket of the control plane's user (the proxies run as it
        # here): a flood of streams from other local processes cannot even connect, where on
        # a loopback port each refused stream costs the event loop (bench/junk_telemetry.py).
        settings = MeshSettings(
            telemetry_socket=await collector.start_unix(run_dir / "als.sock", owner),
            tracing_port=tracing_port,
            tracing_sampling=args.trace_sampling,
        )
        envoy = None
    metrics_port = ports.bound(
        "metrics", await collector.serve_metrics(port=ports.reuse("metrics"))
    )
    ports.save()
    ca = LocalCA.load_or_create(state_dir, dt.datetime.now(dt.UTC))
    runner = PodRunner(
        state_dir,
        run_dir,
        supervisor,
        settings,
        xds,
        network,
        backoff=args.restart_backoff,
        base_env=app_base_env(),
        envoy=envoy,
        credentials=credentials,
    )
    reconciler = Reconciler(
        runner,
        Pusher(ads),
        Identities(ca, credentials),
        prometheus,
        args.ingress_port,
        settings,
        addresses,
        ConfigCanaries(state_dir / "config-canaries.json"),
        local_ports,
    )
    reconciler.callers = collector.callers_of
    reconciler.telemetry_targets = (f"127.0.0.1:{metrics_port}",)
    store = Store.load(state_dir / "store.json")
    prepared = reconciler.prepare(store.documents)
    adopted = await reconciler.adopt(prepared)
    controller = controller_spec(state_dir, args.restart_backoff)
    controller_adopted = supervisor.adopt(controller)
    await reconciler.realise(prepared)
    # What a dead control plane left that nothing wants any more (its pods were deleted, or
    # their spec changed): stopped, and their namespaces removed.
    await supervisor.kill_recorded(keep={c.name for c in supervisor.status()})
    if network is not None:
        await network.prune({r.place.netns for r in runner.running.values() if r.place.netns})
    # Serving needs only the gateway; Prometheus becomes ready a second or so later (its
    # first scrape lands seconds after that anyway), and its readers wait for it.
    await supervisor.wait_ready(sidecar_name(INGRESS_NAME), 15.0)
    info: dict[str, object] = {
        "pid": os.getpid(),
        "keeper": os.getppid(),
        "restarts": int(os.environ.get("CANARYMESH_RESTARTS", "0")),
        "adopted": len(adopted),
        "state_dir": str(state_dir),
        "network": "pod" if network is not None else "host",
        "ads": xds if isinstance(xds, str) else f"127.0.0.1:{xds}",
        "ads_port": xds if isinstance(xds, int) else None,
        "ingress_port": args.ingress_port,
        "ingress_url": f"http://127.0.0.1:{args.ingress_port}",
        "prometheus_url": prometheus.url if prometheus else None,
        "telemetry": {
            "als": settings.telemetry_socket or f"127.0.0.1:{settings.telemetry_port}",
            "metrics_port": metrics_port,
        },
        "tracing_url": f"http://127.0.0.1:{tracing_port}",
    }
    if addresses is not None:
        info["pod_cidr"] = str(addresses.pod_cidr)
        info["service_cidr"] = str(addresses.service_cidr)
    watcher = asyncio.create_task(reconciler.watch_readiness())
    control = ControlPlane(store, reconciler, info)
    api = ApiServer(control, write_token(state_dir / TOKEN_FILE))
    # Kept across restarts: the canary controller (adopted, not restarted) holds it.
    info["api_port"] = await _bind(ports, "api", api.start)
    ports.save()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, control.shutdown.set)
    _write_json(state_dir / DAEMON_FILE, info)
    if not controller_adopted:
        # The canary controller runs under supervision (it reads daemon.json as it starts):
        # killed, it is back after the restart back-off and resumes from its records.
        await supervisor.start(controller, ready_timeout=None)
    try:
        await control.shutdown.wait()
    finally:
        (state_dir / DAEMON_FILE).unlink(missing_ok=True)
        watcher.cancel()
        await api.stop()
        await collector.stop()
        await tracing.stop()
        await ads.stop(0)
    raise Shutdown


def _write_json(path: Path, value: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        asyncio.run(run(args))
    except AlreadyRunning as err:
        print(f"canarymesh control plane: {err}", file=sys.stderr)
        return ALREADY_RUNNING
    except CanaryMeshError as err:
        # The children keep running: the keeper starts a control plane that adopts them.
        print(f"canarymesh control plane: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    with contextlib.suppress(OSError):
        (args.state_dir / DAEMON_FILE).unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
