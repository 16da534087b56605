"""The local mesh's canary controller as a process: one per state directory, found through
``<state_dir>/controller.json`` and kept single by an exclusive lock on ``controller.lock``.

The controller itself is :mod:`canarymesh.controller.local` (``python -m canarymesh.controller
--state-dir D``): it takes the lock and publishes its file here. ``canarymesh rollout start``,
the rollout commands and the dashboard's actions call :func:`ensure_running`, which starts it
detached from the caller when it is not running, as :mod:`.launcher` starts the control plane.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from canarymesh.errors import TemporaryError
from canarymesh.runtime.local.api_client import pid_alive

__all__ = [
    "CONTROLLER_FILE",
    "controller_info",
    "ensure_running",
    "publish_info",
    "take_lock",
]

CONTROLLER_FILE = "controller.json"
LOCK_FILE = "controller.lock"
_SPAWNED: list[subprocess.Popen[bytes]] = []


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


def take_lock(state_dir: Path) -> IO[str] | None:
    """The controller's lock, held while the handle is open; None when another holds it."""
    handle = (state_dir / LOCK_FILE).open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def publish_info(state_dir: Path, info: dict[str, Any] | None) -> None:
    """Write (atomically) or, with None, remove ``controller.json``."""
    path = state_dir / CONTROLLER_FILE
    if info is None:
        path.unlink(missing_ok=True)
        return
    tmp = state_dir / f".{CONTROLLER_FILE}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)
