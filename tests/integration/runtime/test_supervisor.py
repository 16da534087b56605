"""The process supervisor with real child processes: probes, back-off restarts, stops, orphans."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.runtime.local.supervisor import (
    HttpProbe,
    Phase,
    ProcessSpec,
    RestartPolicy,
    Supervisor,
    TcpProbe,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

PY = sys.executable


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its (dead) parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_http_and_tcp_probes_gate_readiness(tmp_path: Path) -> None:
    async def scenario() -> None:
        http_port, tcp_port = free_port(), free_port()
        async with Supervisor() as sup:
            web = ProcessSpec(
                "web",
                [PY, "-m", "http.server", str(http_port), "--bind", "127.0.0.1"],
                tmp_path / "web.log",
                cwd=tmp_path,
                probe=HttpProbe(f"http://127.0.0.1:{http_port}/"),
            )
            status = await sup.start(web, ready_timeout=10)
            assert status.ready and status.phase is Phase.RUNNING and status.pid

            late = (
                "import socket, time; time.sleep(0.4); s = socket.socket();"
                f" s.bind(('127.0.0.1', {tcp_port})); s.listen(); time.sleep(60)"
            )
            tcp = ProcessSpec(
                "tcp", [PY, "-c", late], tmp_path / "tcp.log", probe=TcpProbe(tcp_port)
            )
            started = time.monotonic()
            await sup.start(tcp, ready_timeout=10)
            assert time.monotonic() - started >= 0.4

            never = ProcessSpec(
                "never",
                [
                    PY,
                    "-c",
                    "print('listening soon, honest', flush=True); import time; time.sleep(60)",
                ],
                tmp_path / "never.log",
                probe=TcpProbe(free_port()),
            )
            with pytest.raises(
                TemporaryError, match="(?s)never is not ready.*listening soon, honest"
            ):
                await sup.start(never, ready_timeout=0.5)

            missing = ProcessSpec("missing", ["no-such-program-here"], tmp_path / "m.log")
            with pytest.raises(ConfigError, match="missing: cannot run no-such-program-here"):
                await sup.start(missing)
            assert sup.child_status("missing").phase is Phase.FAILED

    asyncio.run(scenario())


def test_crashing_child_restarts_with_exponential_backoff_and_counts_restarts(
    tmp_path: Path,
) -> None:
    starts = tmp_path / "starts"
    crash = (
        f"import time; open({str(starts)!r}, 'a').write(repr(time.monotonic()) + chr(10));"
        " raise SystemExit(3)"
    )

    async def scenario() -> None:
        spec = ProcessSpec(
            "crasher",
            [PY, "-c", crash],
            tmp_path / "crasher.log",
            backoff_initial=0.1,
            backoff_max=0.4,
        )
        async with Supervisor() as sup:
            await sup.start(spec, ready_timeout=None)
            while len(starts.read_text().splitlines() if starts.exists() else []) < 5:
                await asyncio.sleep(0.05)
            status = sup.child_status("crasher")
            assert status.restarts >= 4 and status.last_exit_code == 3
            assert status.phase in (Phase.BACKOFF, Phase.STARTING, Phase.RUNNING)
            # Either caught between crashes (3) or just restarted and terminated by the stop.
            assert await sup.stop("crasher") in (3, -signal.SIGTERM)
            assert sup.child_status("crasher").phase is Phase.STOPPED

        times = [float(line) for line in starts.read_text().splitlines()]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        # Back-off 0.1, 0.2, 0.4, 0.4 (capped), plus the interpreter's start-up each time.
        assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4 and gaps[3] >= 0.4, gaps
        assert gaps[3] < gaps[2] + 0.3, gaps  # capped, not doubled again

    asyncio.run(scenario())


def test_restart_policies_completed_children_stay_down(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with Supervisor() as sup:
            for policy in (RestartPolicy.ON_FAILURE, RestartPolicy.NEVER):
                spec = ProcessSpec(
                    f"job-{policy.value}", [PY, "-c", "pass"], tmp_path / "j.log", restart=policy
                )
                await sup.start(spec, ready_timeout=None)
                while sup.child_status(spec.name).phase is not Phase.COMPLETED:
                    await asyncio.sleep(0.02)
                assert sup.child_status(spec.name).restarts == 0

    asyncio.run(scenario())


def test_stop_terms_then_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # A child that ignores SIGTERM and has a grandchild in its process group.
    stubborn = (
        "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        f" g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f" open({str(pids)!r}, 'w').write(str(g.pid)); time.sleep(60)"
    )
    polite = (
        "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0));"
        " time.sleep(60)"
    )

    async def scenario() -> None:
        async with Supervisor() as sup:
            await sup.start(ProcessSpec("polite", [PY, "-c", polite], tmp_path / "p.log"), None)
            spec = ProcessSpec("stubborn", [PY, "-c", stubborn], tmp_path / "s.log", stop_grace=0.3)
            await sup.start(spec, None)
            while not pids.exists() or not pids.read_text():
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # let polite install its handler
            assert await sup.stop("polite") == 0
            started = time.monotonic()
            assert await sup.stop("stubborn") == -signal.SIGKILL
            assert 0.3 <= time.monotonic() - started < 2
            grandchild = int(pids.read_text())
            for _ in range(50):
                if not _alive(grandchild):
                    break
                await asyncio.sleep(0.02)
            assert not _alive(grandchild)

    asyncio.run(scenario())


SUPERVISOR_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from canarymesh.runtime.local.supervisor import ProcessSpec, Supervisor, pdeathsig_launcher

async def main():
    sup = Supervisor(launcher=pdeathsig_launcher(prefer_setpriv=sys.argv[2] == "setpriv"))
    pids = []
    for name in ("a", "b"):
        spec = ProcessSpec(name, [sys.executable, "-c", "import time; time.sleep(60)"],
                           Path(sys.argv[1]) / f"{name}.log")
        pids.append((await sup.start(spec, ready_timeout=5)).pid)
    print(json.dumps(pids), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.parametrize("launcher", ["setpriv", "python-trampoline"])
def test_children_die_with_a_sigkilled_supervisor(tmp_path: Path, launcher: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    with subprocess.Popen(
        [PY, "-c", SUPERVISOR_SCRIPT, str(tmp_path), launcher], stdout=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdout is not None
        children = json.loads(proc.stdout.readline())
        assert len(children) == 2 and all(_alive(pid) for pid in children)
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 3
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(_alive(pid) for pid in children), children
