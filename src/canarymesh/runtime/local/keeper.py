"""Keeps the local control plane running: ``python -m canarymesh.runtime.local.keeper ARGS``.

``canarymesh up`` starts this small process, which starts the control plane
(:mod:`canarymesh.runtime.local.daemon`, with ``ARGS``) and starts it again whenever it dies
without having been asked to stop: a killed control plane is back within a second, adopts the
pods and proxies that kept serving meanwhile, and keeps its ports. A clean exit (``down``: the
control plane stopped everything and exited 0) ends the keeper too; SIGTERM is passed on.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

__all__ = ["main"]

BACKOFF_INITIAL = 0.2
BACKOFF_MAX = 5.0
# A control plane that ran this long before dying is restarted from the initial back-off.
STABLE_AFTER = 30.0


# The control plane's exit code when another one already runs for the state directory.
ALREADY_RUNNING = 3
KEEPER_LOCK = "keeper.lock"


def hold_lock(path: Path) -> IO[str] | None:
    """An exclusive lock on ``path`` held for the life of the process (None: someone has it)."""
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def lock_is_held(path: Path) -> bool:
    if not path.exists():
        return False
    handle = hold_lock(path)
    if handle is None:
        return True
    handle.close()
    return False


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    state_dir = Path(args[args.index("--state-dir") + 1])
    log_path = state_dir / "daemon.log"
    lock = hold_lock(state_dir / KEEPER_LOCK)
    if lock is None:
        print("keeper: another keeper runs for this state directory", file=sys.stderr)
        return ALREADY_RUNNING
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    restarts, backoff = 0, BACKOFF_INITIAL
    while True:
        started = time.monotonic()
        env = {**os.environ, "CANARYMESH_RESTARTS": str(restarts)}
        with log_path.open("ab") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "canarymesh.runtime.local.daemon", *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        code = child.wait()
        if stopping or code in (0, ALREADY_RUNNING):
            return code if code == ALREADY_RUNNING else 0
        if time.monotonic() - started > STABLE_AFTER:
            backoff = BACKOFF_INITIAL
        with log_path.open("a") as note:
            note.write(f"keeper: the control plane exited ({code}); restarting in {backoff:.1f}s\n")
        time.sleep(backoff)
        if stopping:
            return 0
        restarts += 1
        backoff = min(backoff * 2, BACKOFF_MAX)


if __name__ == "__main__":
    raise SystemExit(main())
