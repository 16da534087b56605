"""The local mesh's process supervisor: it starts, probes, restarts and stops child processes.

Everything the local mesh runs (Envoy per pod, Prometheus, Bookinfo services, MariaDB) is a
:class:`ProcessSpec` handed to one :class:`Supervisor` living in the control plane's event loop.
It behaves like the kubelet for one container: a crashed child is restarted after an exponential
back-off (10 s, 20 s, ... in Kubernetes; configurable here so tests run fast) and its restart count
is kept for ``canarymesh get pods``.

No child outlives the supervisor: each is started in its own session (so a stop reaches its whole
process group) with ``PR_SET_PDEATHSIG`` = SIGKILL, which the kernel delivers when the thread that
forked it dies, even when the supervisor is SIGKILLed and gets no chance to clean up. That thread
is the event loop's, so run the supervisor in the main thread or in a thread that lives as long.
The signal is set by a launcher (``setpriv``) that then execs the child, not by a ``preexec_fn``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from canarymesh.errors import ConfigError, TemporaryError

__all__ = [
    "ChildStatus",
    "HttpProbe",
    "Phase",
    "ProcessSpec",
    "RestartPolicy",
    "Supervisor",
    "TcpProbe",
    "pdeathsig_launcher",
]


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """Ready when ``GET url`` answers ``status`` (one plain request, loopback only)."""

    url: str
    status: int = 200


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """Ready when something accepts a TCP connection on ``host:port``."""

    port: int
    host: str = "127.0.0.1"


class RestartPolicy(enum.Enum):
    ALWAYS = "Always"
    ON_FAILURE = "OnFailure"
    NEVER = "Never"


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How to run one child: argv, environment (exactly this, nothing inherited), log file."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    probe: HttpProbe | TcpProbe | None = None
    restart: RestartPolicy = RestartPolicy.ALWAYS
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    # A child that ran this long before crashing starts again from the initial back-off.
    backoff_reset_after: float = 120.0
    stop_grace: float = 5.0


class Phase(enum.Enum):
    STARTING = "Starting"
    RUNNING = "Running"
    BACKOFF = "CrashLoopBackOff"
    COMPLETED = "Completed"  # exited and its restart policy says stay down
    STOPPED = "Stopped"
    FAILED = "Failed"  # could not be executed at all


@dataclass(frozen=True, slots=True)
class ChildStatus:
    name: str
    pid: int | None
    phase: Phase
    ready: bool
    restarts: int
    last_exit_code: int | None
    error: str | None


@dataclass(eq=False, slots=True)
class _Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process | None = None
    phase: Phase = Phase.STARTING
    ready: bool = False
    restarts: int = 0
    step: int = 0
    last_exit_code: int | None = None
    error: str | None = None
    stopping: bool = False
    task: asyncio.Task[None] | None = None

    def status(self) -> ChildStatus:
        pid = self.proc.pid if self.proc and self.proc.returncode is None else None
        return ChildStatus(
            self.spec.name,
            pid,
            self.phase,
            self.ready,
            self.restarts,
            self.last_exit_code,
            self.error,
        )


class Supervisor:
    """Owns child processes; use ``async with Supervisor() as sup`` so they all stop on exit."""

    def __init__(self, probe_interval: float = 0.02, launcher: Sequence[str] | None = None) -> None:
        self._children: dict[str, _Child] = {}
        self._probe_interval = probe_interval
        self._launcher = list(pdeathsig_launcher() if launcher is None else launcher)

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_all()

    async def start(self, spec: ProcessSpec, ready_timeout: float | None = 15.0) -> ChildStatus:
        """Start ``spec`` and (unless ``ready_timeout`` is None) wait until its probe passes."""
        if spec.name in self._children and self._children[spec.name].phase is not Phase.STOPPED:
            raise ConfigError(f"a process named {spec.name!r} is already supervised")
        child = _Child(spec)
        self._children[spec.name] = child
        child.task = asyncio.get_running_loop().create_task(self._run(child))
        if ready_timeout is not None:
            return await self.wait_ready(spec.name, ready_timeout)
        return child.status()

    async def wait_ready(self, name: str, timeout: float) -> ChildStatus:
        """Wait for ``name``'s readiness; TemporaryError (with its log tail) if it does not come."""
        child = self._child(name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not child.ready:
            if child.phase in (Phase.FAILED, Phase.COMPLETED, Phase.STOPPED):
                break
            if loop.time() > deadline:
                break
            await asyncio.sleep(self._probe_interval)
        if child.phase is Phase.FAILED:
            raise ConfigError(f"{name}: {child.error}")
        if not child.ready:
            raise TemporaryError(
                f"{name} is not ready ({child.phase.value}, exit code {child.last_exit_code},"
                f" {child.restarts} restarts){_log_tail(child.spec.log_path)}",
                delay=child.spec.backoff_initial,
            )
        return child.status()

    def status(self) -> list[ChildStatus]:
        return [child.status() for _, child in sorted(self._children.items())]

    def child_status(self, name: str) -> ChildStatus:
        return self._child(name).status()

    async def stop(self, name: str) -> int | None:
        """SIGTERM the child's process group, SIGKILL after its grace; returns the exit code."""
        child = self._child(name)
        child.stopping = True
        proc = child.proc
        if proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), child.spec.stop_grace)
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        if child.task is not None:
            child.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await child.task
        child.phase, child.ready = Phase.STOPPED, False
        return proc.returncode if proc is not None else None

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(name) for name in list(self._children)))

    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise ConfigError(f"no supervised process named {name!r}") from None

    async def _run(self, child: _Child) -> None:
        loop = asyncio.get_running_loop()
        spec = child.spec
        while not child.stopping:
            child.phase = Phase.STARTING
            try:
                proc = await _spawn(spec, self._launcher)
            except OSError as err:
                child.phase, child.error = Phase.FAILED, f"cannot run {spec.argv[0]}: {err}"
                return
            child.proc, started = proc, loop.time()
            prober = loop.create_task(self._probe_until_ready(child))
            code = await proc.wait()
            prober.cancel()
            child.ready, child.last_exit_code = False, code
            if child.stopping:
                return
            failed = code != 0
            if spec.restart is RestartPolicy.NEVER or (
                spec.restart is RestartPolicy.ON_FAILURE and not failed
            ):
                child.phase = Phase.COMPLETED
                return
            if loop.time() - started >= spec.backoff_reset_after:
                child.step = 0
            delay = min(spec.backoff_initial * 2**child.step, spec.backoff_max)
            child.step += 1
            child.restarts += 1
            child.phase = Phase.BACKOFF
            await asyncio.sleep(delay)

    async def _probe_until_ready(self, child: _Child) -> None:
        probe = child.spec.probe
        interval = self._probe_interval
        while probe is not None and not await _probe_once(probe):
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 0.5)
        child.ready, child.phase = True, Phase.RUNNING


async def _spawn(spec: ProcessSpec, launcher: Sequence[str]) -> asyncio.subprocess.Process:
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    program = spec.argv[0]
    if "/" not in program:
        found = shutil.which(program, path=spec.env.get("PATH", os.defpath))
        if found is None:
            raise FileNotFoundError(f"{program} is not on PATH")
        program = found
    with spec.log_path.open("ab") as log:
        # No preexec_fn: Python code between fork and exec can deadlock or crash in a process
        # with gRPC's threads (seen: a segfault in the child). The launcher sets the signal.
        return await asyncio.create_subprocess_exec(
            *launcher,
            program,
            *spec.argv[1:],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(spec.env),
            cwd=spec.cwd,
            start_new_session=True,
        )


def pdeathsig_launcher(prefer_setpriv: bool = True) -> list[str]:
    """A prefix that makes the kernel SIGKILL the child when its parent dies, then execs it.

    util-linux's ``setpriv`` when installed (Debian always has it), else a Python trampoline
    that calls ``prctl(PR_SET_PDEATHSIG)`` itself; either way the signal survives the exec.
    """
    setpriv = shutil.which("setpriv") if prefer_setpriv else None
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--"]
    return [sys.executable, "-c", _TRAMPOLINE, str(os.getpid())]


# argv: parent pid, program, args. PR_SET_PDEATHSIG is 1 in <linux/prctl.h>, SIGKILL is 9; a
# parent that died before prctl took effect would never send the signal, hence the check.
_TRAMPOLINE = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 9, 0, 0, 0);"
    " os.getppid() == int(sys.argv[1]) or os._exit(1); os.execv(sys.argv[2], sys.argv[2:])"
)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


async def _probe_once(probe: HttpProbe | TcpProbe) -> bool:
    if isinstance(probe, TcpProbe):
        return await _exchange(probe.host, probe.port, b"") is not None
    url = urlsplit(probe.url)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    # HTTP/1.1: Envoy's admin (like its listeners by default) refuses HTTP/1.0 with a 426.
    request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode()
    status_line = await _exchange(url.hostname or "127.0.0.1", url.port or 80, request)
    parts = (status_line or b"").split()
    return len(parts) >= 2 and parts[1] == str(probe.status).encode()


async def _exchange(host: str, port: int, request: bytes) -> bytes | None:
    """Connect, send ``request`` and return the first line back (b"" if nothing was sent)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
    except (OSError, TimeoutError):
        return None
    try:
        if not request:
            return b""
        writer.write(request)
        return await asyncio.wait_for(reader.readline(), 1.0)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n--- last lines of " + str(path) + " ---\n" + "\n".join(text)) if text else ""
