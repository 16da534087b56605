"""The local mesh's process supervisor: it starts, probes, restarts and stops child processes.

Everything the local mesh runs (Envoy per pod, Prometheus, Bookinfo services, MariaDB) is a
:class:`ProcessSpec` handed to one :class:`Supervisor` living in the control plane's event loop.
It behaves like the kubelet for one container: a crashed child is restarted after an exponential
back-off (10 s, 20 s, ... in Kubernetes; configurable here so tests run fast) and its restart count
is kept for ``canarymesh get pods``.

Each child is started in its own session (so a stop reaches its whole process group). By default
no child outlives the supervisor: it gets ``PR_SET_PDEATHSIG`` = SIGKILL, which the kernel
delivers when the thread that forked it dies, even when the supervisor is SIGKILLed and gets no
chance to clean up. That thread is the event loop's, so run the supervisor in the main thread or
in a thread that lives as long. The signal is set by a launcher (``setpriv``) that then execs the
child, not by a ``preexec_fn``.

A *detached* child (``ProcessSpec.detached``: the mesh's pods, gateways and Prometheus) is the
opposite, as a kubelet's containers outlive the kubelet: no parent-death signal, and its pid,
start time and a fingerprint of its spec are recorded in the supervisor's ``records`` file. A
supervisor started later (a restarted control plane) :meth:`Supervisor.adopt` s it when the
same spec is asked for and that very process still runs: it watches it through a pidfd and
restarts it on exit as its own, without ever having stopped it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import json
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
from canarymesh.runtime.local.child_records import load_records, recorded_children, start_time
from canarymesh.runtime.local.netns import socket_in_netns

__all__ = [
    "ChildStatus",
    "ExecProbe",
    "HttpProbe",
    "Phase",
    "Probe",
    "ProbeTiming",
    "ProcessSpec",
    "RestartPolicy",
    "Supervisor",
    "TcpProbe",
    "pdeathsig_launcher",
    "recorded_children",
]


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """Passes when ``GET url`` answers ``status`` (or, with ``any_success``, any 2xx/3xx as the
    kubelet counts); ``netns``: the request is made inside that network namespace file."""

    url: str
    status: int = 200
    netns: str | None = None
    any_success: bool = False
    headers: tuple[tuple[str, str], ...] = ()
    # The server's Unix socket (the URL then gives only the path and Host).
    unix: str | None = None


@dataclass(frozen=True, slots=True)
class TcpProbe:
    """Passes when something accepts a TCP connection on ``host:port`` (inside ``netns``)."""

    port: int
    host: str = "127.0.0.1"
    netns: str | None = None


@dataclass(frozen=True, slots=True)
class ExecProbe:
    """Passes when ``argv`` exits 0, started with the container's own launcher and env."""

    argv: tuple[str, ...]


Probe = HttpProbe | TcpProbe | ExecProbe


@dataclass(frozen=True, slots=True)
class ProbeTiming:
    """Kubernetes' probe fields, in seconds and counts (its defaults)."""

    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


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
    # Readiness. Without ``readiness`` timing the child is ready from its probe's first success
    # until it exits (the mesh's own processes); with it, the kubelet's loop runs for its life.
    probe: Probe | None = None
    readiness: ProbeTiming | None = None
    # Liveness, as the kubelet: ``failure_threshold`` failures in a row restart the child.
    liveness: Probe | None = None
    liveness_timing: ProbeTiming = field(default_factory=ProbeTiming)
    # Replaces the supervisor's launcher (a pod's: its network namespace and user, then exec).
    launcher: tuple[str, ...] | None = None
    # Outlives the supervisor and can be adopted by the next one (see the module's doc).
    detached: bool = False
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


def fingerprint(spec: ProcessSpec) -> str:
    """What makes two specs the same process: program, arguments, environment, place, user."""
    content = json.dumps(
        [list(spec.argv), sorted(spec.env.items()), str(spec.cwd), list(spec.launcher or ())]
    )
    return hashlib.sha256(content.encode()).hexdigest()[:24]


class _Adopted:
    """A running process another supervisor started: watched through a pidfd (it is not our
    child, so no exit code can be had: it reads as -1)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._fd = os.pidfd_open(pid)
        self._exited = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_reader(self._fd, self._on_exit)

    def _on_exit(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._fd)
        os.close(self._fd)
        self.returncode = -1
        if not self._exited.done():
            self._exited.set_result(-1)

    async def wait(self) -> int:
        return int(await asyncio.shield(self._exited))


@dataclass(eq=False, slots=True)
class _Child:
    spec: ProcessSpec
    proc: asyncio.subprocess.Process | _Adopted | None = None
    phase: Phase = Phase.STARTING
    ready: bool = False
    restarts: int = 0
    step: int = 0
    last_exit_code: int | None = None
    error: str | None = None
    stopping: bool = False
    task: asyncio.Task[None] | None = None
    # Why the kubelet-style liveness probe last killed it, for ``describe``.
    killed_by_liveness: int = 0

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

    def __init__(
        self,
        probe_interval: float = 0.02,
        launcher: Sequence[str] | None = None,
        records: Path | None = None,
    ) -> None:
        self._children: dict[str, _Child] = {}
        self._probe_interval = probe_interval
        self._launcher = list(pdeathsig_launcher() if launcher is None else launcher)
        self._records_path = records
        # Detached children of this and earlier supervisors: name -> {pid, start, fingerprint}.
        self._records: dict[str, dict[str, object]] = load_records(records)

    def recorded(self) -> dict[str, int]:
        """Detached processes an earlier supervisor recorded that still run: name -> pid."""
        alive = {}
        for name, record in self._records.items():
            pid = record.get("pid")
            if isinstance(pid, int) and start_time(pid) == record.get("start"):
                alive[name] = pid
        return alive

    def adopt(self, spec: ProcessSpec) -> bool:
        """Take over ``spec``'s process if an earlier supervisor started it with this very spec
        and it still runs; False (nothing done) otherwise."""
        record = self._records.get(spec.name)
        if not spec.detached or record is None or record.get("fingerprint") != fingerprint(spec):
            return False
        pid = record.get("pid")
        if not isinstance(pid, int) or start_time(pid) != record.get("start"):
            return False
        existing = self._children.get(spec.name)
        if existing is not None and existing.phase is not Phase.STOPPED:
            return False
        try:
            handle = _Adopted(pid)
        except OSError:
            return False
        child = _Child(spec, handle)
        child.restarts = int(str(record.get("restarts", 0)))
        self._children[spec.name] = child
        child.task = asyncio.get_running_loop().create_task(self._run(child, handle))
        return True

    async def kill_recorded(self, keep: set[str], grace: float = 3.0) -> list[str]:
        """Stop the recorded processes no one adopted and ``keep`` does not name (what a dead
        supervisor left running that nothing wants any more); returns their names."""
        stopped = []
        for name, pid in self.recorded().items():
            if name in keep or name in self._children:
                continue
            _signal_group(pid, signal.SIGTERM)
            stopped.append(name)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for name in stopped:
            record = self._records.pop(name)
            pid = int(str(record["pid"]))
            while start_time(pid) == record.get("start") and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if start_time(pid) == record.get("start"):
                _signal_group(pid, signal.SIGKILL)
        self._save_records()
        return stopped

    def _record(self, child: _Child) -> None:
        if not child.spec.detached or child.proc is None:
            return
        pid = child.proc.pid
        self._records[child.spec.name] = {
            "pid": pid,
            "start": start_time(pid),
            "fingerprint": fingerprint(child.spec),
            "restarts": child.restarts,
        }
        self._save_records()

    def _forget(self, name: str) -> None:
        if self._records.pop(name, None) is not None:
            self._save_records()

    def _save_records(self) -> None:
        if self._records_path is None:
            return
        tmp = self._records_path.with_name(f".{self._records_path.name}.tmp")
        tmp.write_text(json.dumps(self._records, indent=1, sort_keys=True))
        os.replace(tmp, self._records_path)

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

    def has(self, name: str) -> bool:
        """Whether ``name`` was started (and not replaced since); it may have stopped."""
        return name in self._children

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
        self._forget(name)
        return proc.returncode if proc is not None else None

    async def stop_all(self) -> None:
        await asyncio.gather(*(self.stop(name) for name in list(self._children)))

    def _child(self, name: str) -> _Child:
        try:
            return self._children[name]
        except KeyError:
            raise ConfigError(f"no supervised process named {name!r}") from None

    async def _run(self, child: _Child, adopted: _Adopted | None = None) -> None:
        loop = asyncio.get_running_loop()
        spec = child.spec
        while not child.stopping:
            child.phase = Phase.STARTING
            proc: asyncio.subprocess.Process | _Adopted
            if adopted is not None:
                proc, adopted = adopted, None
            else:
                try:
                    proc = await _spawn(spec, [] if spec.detached else self._launcher)
                except OSError as err:
                    child.phase, child.error = Phase.FAILED, f"cannot run {spec.argv[0]}: {err}"
                    return
            child.proc, started = proc, loop.time()
            self._record(child)
            probers = [loop.create_task(self._readiness(child))]
            if spec.liveness is not None:
                probers.append(loop.create_task(self._liveness(child, proc)))
            code = await proc.wait()
            for prober in probers:
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
            self._forget(spec.name)
            await asyncio.sleep(delay)

    async def _readiness(self, child: _Child) -> None:
        """Poll quickly until the first success (the kubelet waits a whole period; locally
        that only slows start-up), then, with ``readiness`` timing, the kubelet's loop."""
        spec = child.spec
        probe, timing = spec.probe, spec.readiness
        if timing is not None and timing.initial_delay:
            await asyncio.sleep(timing.initial_delay)
        interval = self._probe_interval
        timeout = timing.timeout if timing is not None else 1.0
        while probe is not None and not await _probe_once(probe, spec, timeout):
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, 0.5)
        child.ready, child.phase = True, Phase.RUNNING
        if probe is None or timing is None:
            return
        successes = failures = 0
        while True:
            await asyncio.sleep(timing.period)
            if await _probe_once(probe, spec, timing.timeout):
                successes, failures = successes + 1, 0
                if successes >= timing.success_threshold:
                    child.ready = True
            else:
                successes, failures = 0, failures + 1
                if failures >= timing.failure_threshold:
                    child.ready = False

    async def _liveness(self, child: _Child, proc: asyncio.subprocess.Process | _Adopted) -> None:
        spec = child.spec
        probe, timing = spec.liveness, spec.liveness_timing
        assert probe is not None
        await asyncio.sleep(timing.initial_delay)
        failures = 0
        while proc.returncode is None:
            if await _probe_once(probe, spec, timing.timeout):
                failures = 0
            else:
                failures += 1
                if failures >= timing.failure_threshold:
                    # As the kubelet: the container is killed and restarted by its policy.
                    child.killed_by_liveness += 1
                    _signal_group(proc.pid, signal.SIGTERM)
                    try:
                        await asyncio.wait_for(proc.wait(), spec.stop_grace)
                    except TimeoutError:
                        _signal_group(proc.pid, signal.SIGKILL)
                    return
            await asyncio.sleep(timing.period)


async def _spawn(spec: ProcessSpec, launcher: Sequence[str]) -> asyncio.subprocess.Process:
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    if spec.launcher is not None:
        launcher = spec.launcher
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


async def _probe_once(probe: Probe, spec: ProcessSpec, timeout: float = 1.0) -> bool:
    if isinstance(probe, ExecProbe):
        return await _exec_probe(probe, spec, timeout)
    if isinstance(probe, TcpProbe):
        return await _exchange(probe.host, probe.port, b"", probe.netns, timeout) is not None
    url = urlsplit(probe.url)
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    extra = "".join(f"{k}: {v}\r\n" for k, v in probe.headers)
    # HTTP/1.1: Envoy's admin (like its listeners by default) refuses HTTP/1.0 with a 426.
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{extra}Connection: close\r\n\r\n"
    ).encode()
    if probe.unix is not None:
        status_line = await _exchange_unix(probe.unix, request, timeout)
    else:
        status_line = await _exchange(
            url.hostname or "127.0.0.1", url.port or 80, request, probe.netns, timeout
        )
    parts = (status_line or b"").split()
    if len(parts) < 2 or not parts[1].isdigit():
        return False
    if probe.any_success:
        return 200 <= int(parts[1]) < 400
    return parts[1] == str(probe.status).encode()


async def _exec_probe(probe: ExecProbe, spec: ProcessSpec, timeout: float) -> bool:
    launcher = list(spec.launcher or ())
    try:
        proc = await asyncio.create_subprocess_exec(
            *launcher,
            *probe.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(spec.env),
            cwd=spec.cwd,
            start_new_session=True,
        )
    except OSError:
        return False
    try:
        return await asyncio.wait_for(proc.wait(), timeout) == 0
    except TimeoutError:
        _signal_group(proc.pid, signal.SIGKILL)
        await proc.wait()
        return False


async def _exchange(
    host: str, port: int, request: bytes, netns: str | None = None, timeout: float = 1.0
) -> bytes | None:
    """Connect, send ``request`` and return the first line back (b"" if nothing was sent)."""
    try:
        if netns is None:
            connecting = asyncio.open_connection(host, port)
        else:
            connecting = _open_in_netns(netns, host, port)
        reader, writer = await asyncio.wait_for(connecting, timeout)
    except (OSError, TimeoutError):
        return None
    try:
        if not request:
            return b""
        writer.write(request)
        return await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()


async def _exchange_unix(path: str, request: bytes, timeout: float) -> bytes | None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(request)
        return await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()


async def _open_in_netns(
    netns: str, host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = socket_in_netns(netns)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except OSError:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return ("\n--- last lines of " + str(path) + " ---\n" + "\n".join(text)) if text else ""
