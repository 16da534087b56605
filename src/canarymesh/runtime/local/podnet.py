"""The pod network of one local mesh: what a CNI plugin and istio-init do on a Kubernetes node.

Every namespace this module makes is named ``cm-<mesh id>-...`` (the mesh id is a hash of the
state directory), so several meshes live side by side and a crashed one's leftovers are found:

* ``cm-<id>-node``: the "node". It holds the bridge ``cm0`` with the pod CIDR's first address,
  the pods' default gateway. Nothing else is in it, and it has no link to the host: the host's
  routes and firewall are never touched.
* ``cm-<id>-host``: a handle on the host's own namespace (``ip netns attach``), where gateways
  bind the ports users call on 127.0.0.1 (Envoy's ``network_namespace_filepath``).
* ``cm-<id>-<namespace>.<pod>``: one per pod, with ``lo``, ``eth0`` (a veth whose peer is on
  the bridge), the pod's IP and a default route; for a sidecar pod, the istio-iptables rules
  (:func:`canarymesh.mesh.capture.iptables_rules`) and a resolv.conf in ``/etc/netns/<name>/``
  (``ip netns exec`` mounts it over ``/etc/resolv.conf``) whose nameserver the sidecar answers.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from canarymesh.mesh.capture import iptables_rules
from canarymesh.runtime.local.netns import NETNS_DIR, NetnsError, ip_batch, netns_path, run

__all__ = [
    "BRIDGE",
    "ETC_NETNS",
    "RUN_ROOT",
    "PodNetworks",
    "mesh_id",
    "pod_mac",
    "remove_pod_network",
]

BRIDGE = "cm0"
ETC_NETNS = Path("/etc/netns")
# The proxies' files and sockets (``/run`` is reachable by the proxy user; a home may not be).
RUN_ROOT = Path("/run/canarymesh")


def mesh_id(state_dir: Path) -> str:
    return hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:8]


def veth_name(ip: str) -> str:
    """The pod's veth end on the bridge: unique per pod IP, within Linux's 15 characters."""
    return f"vp{int(ipaddress.IPv4Address(ip)) & 0xFFFFFF:06x}"


def pod_mac(ip: str) -> str:
    """The MAC address of the pod's ``eth0``: ``0a:58`` (locally administered, unicast) and the
    four bytes of its IP, as OVN-Kubernetes gives pods. A pod IP freed by one pod and handed to
    the next then keeps its MAC, so the neighbour caches of the other pods stay right; with a
    random MAC they keep the departed pod's for seconds and the new pod's first connections
    are dropped on the bridge (seen when an Argo Rollout's new revision took an old one's IP).
    """
    packed = ipaddress.IPv4Address(ip).packed
    return ":".join(f"{b:02x}" for b in (0x0A, 0x58, *packed))


def resolv_conf(namespace: str, nameserver: str, domain: str = "cluster.local") -> str:
    """Kubernetes' pod resolv.conf: the pod's own namespace first in the search list."""
    search = f"{namespace}.svc.{domain} svc.{domain} {domain}"
    return f"search {search}\nnameserver {nameserver}\noptions ndots:5\n"


class PodNetworks:
    """Creates and removes the namespaces, links, addresses and rules of one mesh's pods."""

    def __init__(self, state_dir: Path, pod_cidr: ipaddress.IPv4Network, nameserver: str) -> None:
        self.prefix = f"cm-{mesh_id(state_dir)}-"
        self.node = self.prefix + "node"
        self.host = self.prefix + "host"
        self.pod_cidr = pod_cidr
        self.gateway = str(pod_cidr.network_address + 1)
        self.nameserver = nameserver

    @property
    def host_netns(self) -> str:
        return netns_path(self.host)

    def pod_netns(self, namespace: str, pod: str) -> str:
        return f"{self.prefix}{namespace}.{pod}"

    def existing(self) -> list[str]:
        """This mesh's namespaces that exist now (a crashed mesh's leftovers before ``start``)."""
        try:
            return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(self.prefix))
        except FileNotFoundError:
            return []

    async def start(self, adopt: bool = False) -> None:
        """The node with its bridge and the host handle, after removing any leftovers; with
        ``adopt`` (a restarted control plane whose pods still run) what exists is kept."""
        if adopt and (NETNS_DIR / self.node).exists():
            if not (NETNS_DIR / self.host).exists():
                await run(["ip", "netns", "attach", self.host, str(os.getpid())])
            return
        await self.stop()
        await run(["ip", "netns", "add", self.node])
        await run(["ip", "netns", "attach", self.host, str(os.getpid())])
        prefix = self.pod_cidr.prefixlen
        await ip_batch(
            [
                "link set lo up",
                f"link add {BRIDGE} type bridge",
                f"addr add {self.gateway}/{prefix} dev {BRIDGE}",
                f"link set {BRIDGE} up",
            ],
            self.node,
        )

    async def add_pod(self, name: str, namespace: str, ip: str, capture: bool) -> str:
        """The pod's namespace (returns its name); ``capture`` adds the sidecar's rules."""
        veth = veth_name(ip)
        await run(["ip", "netns", "add", name])
        await ip_batch(
            [
                f"link add {veth} type veth peer name eth0 address {pod_mac(ip)} netns {name}",
                f"link set {veth} master {BRIDGE} up",
            ],
            self.node,
        )
        await ip_batch(
            [
                "link set lo up",
                f"addr add {ip}/{self.pod_cidr.prefixlen} dev eth0",
                "link set eth0 up",
                f"route add default via {self.gateway}",
            ],
            name,
        )
        if capture:
            etc = ETC_NETNS / name
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(resolv_conf(namespace, self.nameserver))
            rules = iptables_rules(self.nameserver)
            await run(["ip", "netns", "exec", name, "iptables-restore"], rules)
        return name

    async def ensure_pod(self, name: str, namespace: str, ip: str, capture: bool) -> str:
        """:meth:`add_pod`, unless that namespace exists already, whole (a pod a crashed
        control plane left, whose processes died): then it is kept; half made, it is remade."""
        if (NETNS_DIR / name).exists():
            try:
                shown = await run(["ip", "-n", name, "-4", "-o", "addr", "show", "dev", "eth0"])
            except NetnsError:
                shown = ""
            if f"inet {ip}/" in shown:
                return name
            await self.remove_pod(name)
        return await self.add_pod(name, namespace, ip, capture)

    async def prune(self, keep: set[str]) -> list[str]:
        """Remove this mesh's pod namespaces that ``keep`` does not name (nor node and host)."""
        removed = []
        for name in self.existing():
            if name in keep or name in (self.node, self.host):
                continue
            await self.remove_pod(name)
            removed.append(name)
        return removed

    async def remove_pod(self, name: str) -> None:
        """Delete the pod's namespace (its veth goes with it) once no process is left in it."""
        if (NETNS_DIR / name).exists():
            await run(["ip", "netns", "delete", name])
        shutil.rmtree(ETC_NETNS / name, ignore_errors=True)

    async def stop(self) -> None:
        """Remove every namespace of this mesh (the host handle only unmounts a reference)."""
        for name in self.existing():
            await run(["ip", "netns", "delete", name])
        if ETC_NETNS.is_dir():
            for leftover in ETC_NETNS.glob(self.prefix + "*"):
                shutil.rmtree(leftover, ignore_errors=True)


def remove_pod_network(state_dir: Path) -> list[str]:
    """Synchronously remove a mesh's namespaces, ``/etc/netns`` entries and run directory
    (after its control plane died); returns the namespaces removed."""
    prefix = f"cm-{mesh_id(state_dir)}-"
    removed = []
    names = sorted(p.name for p in NETNS_DIR.glob(prefix + "*")) if NETNS_DIR.is_dir() else []
    for name in names:
        done = subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        if done.returncode == 0:
            removed.append(name)
    if ETC_NETNS.is_dir():
        for leftover in ETC_NETNS.glob(prefix + "*"):
            shutil.rmtree(leftover, ignore_errors=True)
    shutil.rmtree(RUN_ROOT / mesh_id(state_dir), ignore_errors=True)
    shutil.rmtree(Path(tempfile.gettempdir()) / f"cm-admin-{mesh_id(state_dir)}", True)
    return removed
