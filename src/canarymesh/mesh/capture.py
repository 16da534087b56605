"""Istio's sidecar layout inside a pod network namespace, and the istio-iptables rules for it.

Pure: the ports every sidecar uses when its pod has a network of its own (the same numbers as
Istio's, so ``proxy-config`` output and users' knowledge carry over), and :func:`iptables_rules`,
the ``iptables-restore`` input that captures the pod's traffic the way ``istio-iptables`` does.
The runtime (``runtime.local.podnet``) feeds the rules to ``iptables-restore`` inside the pod's
namespace; ``xds`` builds the listeners the rules redirect to.

The capture, in words (Istio's ``tools/istio-iptables``):

* inbound TCP to any port goes to the sidecar's ``virtualInbound`` listener (15006), except the
  sidecar's own ports (15090 stats, 15021 health, 15020 merged stats);
* outbound TCP from the app goes to ``virtualOutbound`` (15001); the sidecar (uid/gid 1337) is
  excluded, and so is traffic to loopback from anyone but the sidecar;
* the sidecar's own calls to the app (source 127.0.0.6) are left alone, and the sidecar calling
  its own pod IP over loopback is sent to 15006 (a pod calling a service it serves itself);
* DNS (UDP 53) from the app goes to the sidecar's DNS listener (15053), Istio's DNS proxying.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ADMIN_PORT",
    "DNS_PORT",
    "EXCLUDED_INBOUND_PORTS",
    "INBOUND_PORT",
    "INBOUND_SOURCE",
    "OUTBOUND_PORT",
    "PROXY_GID",
    "PROXY_UID",
    "STATS_PORT",
    "iptables_rules",
]

OUTBOUND_PORT = 15001
INBOUND_PORT = 15006
ADMIN_PORT = 15000
STATS_PORT = 15090
DNS_PORT = 15053
HEALTH_PORT = 15021
MERGED_STATS_PORT = 15020
PROXY_UID = 1337
PROXY_GID = 1337
# The source address the sidecar uses toward its own app (Istio's InboundPassthroughBindIpv4).
INBOUND_SOURCE = "127.0.0.6"
EXCLUDED_INBOUND_PORTS = (STATS_PORT, HEALTH_PORT, MERGED_STATS_PORT)


def iptables_rules(
    nameserver: str,
    *,
    uid: int = PROXY_UID,
    gid: int = PROXY_GID,
    excluded_inbound: Sequence[int] = EXCLUDED_INBOUND_PORTS,
) -> str:
    """``iptables-restore`` input (the ``nat`` table) for one pod, in istio-iptables' order.

    ``nameserver`` is the address in the pod's resolv.conf; only DNS sent there is captured.
    """
    lines = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
        ":ISTIO_INBOUND - [0:0]",
        ":ISTIO_IN_REDIRECT - [0:0]",
        ":ISTIO_OUTPUT - [0:0]",
        ":ISTIO_REDIRECT - [0:0]",
        "-A PREROUTING -p tcp -j ISTIO_INBOUND",
        "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
        f"-A OUTPUT -p udp -d {nameserver}/32 --dport 53 -m owner ! --uid-owner {uid}"
        f" -j REDIRECT --to-ports {DNS_PORT}",
    ]
    lines += [f"-A ISTIO_INBOUND -p tcp --dport {port} -j RETURN" for port in excluded_inbound]
    lines += [
        "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT",
        f"-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports {INBOUND_PORT}",
        f"-A ISTIO_OUTPUT -s {INBOUND_SOURCE}/32 -o lo -j RETURN",
        f"-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --uid-owner {uid}"
        " -j ISTIO_IN_REDIRECT",
        f"-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner {uid} -j RETURN",
        f"-A ISTIO_OUTPUT -m owner --uid-owner {uid} -j RETURN",
        f"-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m owner --gid-owner {gid}"
        " -j ISTIO_IN_REDIRECT",
        f"-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner {gid} -j RETURN",
        f"-A ISTIO_OUTPUT -m owner --gid-owner {gid} -j RETURN",
        "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
        f"-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports {OUTBOUND_PORT}",
        "COMMIT",
    ]
    return "\n".join(lines) + "\n"
