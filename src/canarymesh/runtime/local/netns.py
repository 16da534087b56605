"""Linux network namespaces from Python: run ``ip``/``iptables-restore``, and open sockets inside.

The pod network (:mod:`canarymesh.runtime.local.podnet`) drives iproute2 through this module;
the control plane opens sockets inside a pod's namespace (probes, Envoy's admin on the pod's
loopback) with :func:`socket_in_netns`: a short-lived thread enters the namespace with
``setns(2)``, creates the socket and ends, and the socket stays bound to that namespace wherever
it is used. The event loop's own thread never changes namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from canarymesh.errors import CanaryMeshError

__all__ = [
    "NETNS_DIR",
    "NetnsError",
    "ip_batch",
    "netns_path",
    "pod_networks_unavailable",
    "run",
    "socket_in_netns",
]

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000


class NetnsError(CanaryMeshError):
    """A namespace, link, address or rule could not be made (the command's stderr says why)."""


def netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


async def run(argv: Sequence[str], stdin: str | None = None) -> str:
    """Run one command to completion off the event loop's back; NetnsError if it fails."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    if proc.returncode != 0:
        command = " ".join(argv)
        raise NetnsError(f"`{command}` failed ({proc.returncode}): {err.decode().strip()}")
    return out.decode()


async def ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    """Several ``ip`` commands in one process (``ip -batch``), inside ``netns`` if given."""
    if not commands:
        return
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    await run(argv, "\n".join(commands) + "\n")


def socket_in_netns(
    path: str, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
) -> socket.socket:
    """A new socket created inside the network namespace at ``path`` (non-blocking)."""
    found: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_create() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
            finally:
                os.close(fd)
            sock = socket.socket(family, kind)
            sock.setblocking(False)
            found.append(sock)
        except BaseException as err:  # handed to the caller's thread
            failed.append(err)

    # The thread ends in the pod's namespace; nothing else ever runs on it.
    worker = threading.Thread(target=enter_and_create, name="netns-socket", daemon=True)
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return found[0]


def pod_networks_unavailable() -> str | None:
    """Why pods cannot get network namespaces here (None: they can)."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "network namespaces need root (rootless pod networks are not supported yet)"
    for tool in ("ip", "iptables-restore", "setpriv"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: iproute2, iptables, util-linux)"
    probe = f"cm-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None
