"""How a pod's processes are started inside the pod: its network namespace, user and privileges.

The supervisor runs each process behind a *launcher* (argv prefix, then ``exec``). In a pod
network the launcher is ``ip netns exec <pod> setpriv ... --``: ``ip netns exec`` enters the pod's
namespace and mounts its ``/etc/netns/<pod>/resolv.conf``; ``setpriv`` sets the process' user and
capabilities, then execs the program in the same process. No parent-death signal: a pod outlives
a crashed control plane, which adopts it again when it restarts (``supervisor``).

* the sidecar runs as uid/gid 1337, the user the capture rules exempt (istio-iptables);
* the app runs as its ``securityContext`` user, or as root with a container's reduced
  capabilities: without ``CAP_NET_ADMIN``/``CAP_NET_RAW`` it cannot change the pod's rules or
  addresses, so it cannot walk around its sidecar; without ``CAP_DAC_OVERRIDE``, ``CAP_SETUID``
  and the like it cannot read the proxy's files (owned by 1337) or become the proxy's user;
* a gateway runs as root: Envoy needs ``CAP_SYS_ADMIN`` to bind its ports in the host's
  namespace.
"""

from __future__ import annotations

import functools
import os
import subprocess

from canarymesh.mesh.capture import PROXY_GID, PROXY_UID

__all__ = ["APP_CAPABILITIES", "app_launcher", "gateway_launcher", "sidecar_launcher"]

# What a root app keeps (a subset of a container runtime's defaults): none of them reaches the
# pod's network configuration, another user's files or another process.
APP_CAPABILITIES = ("net_bind_service", "sys_chroot", "audit_write", "fsetid")


def _netns(name: str | None) -> list[str]:
    return ["ip", "netns", "exec", name] if name else []


def sidecar_launcher(netns: str | None) -> tuple[str, ...] | None:
    """None on the shared network (the supervisor's own launcher, the current user)."""
    if netns is None:
        return None
    ids = ["--reuid", str(PROXY_UID), "--regid", str(PROXY_GID), "--clear-groups"]
    return (*_netns(netns), "setpriv", *ids, "--")


def gateway_launcher(netns: str | None) -> tuple[str, ...] | None:
    if netns is None:
        return None
    return (*_netns(netns), "setpriv", "--")


def app_launcher(netns: str | None, run_as: tuple[int, int] | None) -> tuple[str, ...] | None:
    if netns is None and run_as is None:
        return None
    options: list[str] = []
    if run_as is not None:
        uid, gid = run_as
        options += ["--reuid", str(uid), "--regid", str(gid), "--clear-groups"]
    elif os.geteuid() == 0:
        keep = ",".join(f"+{cap}" for cap in APP_CAPABILITIES)
        options += ["--bounding-set", f"-all,{keep}", "--inh-caps", "-all", "--no-new-privs"]
    return (*_netns(netns), "setpriv", *options, "--")


@functools.lru_cache(maxsize=64)
def can_run(uid: int, gid: int, program: str) -> bool:
    """Whether ``uid`` may execute ``program`` and read the packages next to it (a checkout or
    virtualenv under a private home, such as root's 0700, is out of other users' reach)."""
    probe = [program, "-c", "import bookinfo"] if program.endswith(("python", "python3")) else []
    argv = ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups"]
    done = subprocess.run(
        argv + (probe or ["test", "-x", program]), capture_output=True, timeout=30
    )
    return done.returncode == 0
