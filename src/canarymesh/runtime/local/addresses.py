"""IP addresses of a local mesh with pod networks: pod IPs, ClusterIPs, ServiceEntry addresses.

``build_mesh`` asks an :class:`AddressBook` for every address it needs (``("pod", proxy id)``,
``("service", "<namespace>/<name>")``, ``("entry", host)``). As in Kubernetes, a Service keeps
its ClusterIP for as long as it exists (re-applying it changes nothing), a pod keeps its IP for
its life, and addresses are freed when their owner is gone. The book is saved in the state
directory, so a restarted control plane gives every running pod and service the same address.

Reserved, as a cluster does: the pod CIDR's first host is the node's bridge (the pods' default
gateway); the service CIDR's first host is ``kubernetes`` and its tenth the DNS server, the
``nameserver`` of every pod's resolv.conf (Istio's DNS proxy in the sidecar answers it).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from canarymesh.errors import ConfigError

# ("pod" | "service" | "entry", owner): the shape of mesh.build.AddressKey, without its imports
# (the CLI reads this module's defaults and should start fast).
AddressKey = tuple[str, str]

__all__ = ["DEFAULT_POD_CIDR", "DEFAULT_SERVICE_CIDR", "ENTRY_CIDR", "AddressBook"]

DEFAULT_POD_CIDR = "10.244.0.0/16"
DEFAULT_SERVICE_CIDR = "10.96.0.0/12"
# Istio's range for addresses it allocates to ServiceEntry hosts (class E, never routed).
ENTRY_CIDR = "240.240.0.0/16"
KINDS = ("pod", "service", "entry")


def parse_cidr(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError as err:
        raise ConfigError(f"{what} {text!r} is not an IPv4 CIDR: {err}") from None
    if network.num_addresses < 16:
        raise ConfigError(f"{what} {text} is too small (at least a /28)")
    return network


@dataclass(slots=True)
class AddressBook:
    pod_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    path: Path | None = None
    # kind -> owner -> address
    assigned: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    # build_mesh's replica ids (``reviews-v1-0``) -> pod keys (``default/reviews-v1-xxx``).
    pods: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(
        cls, path: Path, pod_cidr: str = DEFAULT_POD_CIDR, service_cidr: str = DEFAULT_SERVICE_CIDR
    ) -> AddressBook:
        book = cls(parse_cidr(pod_cidr, "pod CIDR"), parse_cidr(service_cidr, "service CIDR"), path)
        if book.pod_cidr.overlaps(book.service_cidr):
            raise ConfigError(
                f"pod CIDR {pod_cidr} and service CIDR {service_cidr} overlap;"
                " choose ranges that do not (--pod-cidr, --service-cidr)"
            )
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = {}
        for kind in KINDS:
            network = book.network(kind)
            entries = saved.get(kind, {}) if isinstance(saved, dict) else {}
            for owner, address in entries.items() if isinstance(entries, dict) else ():
                # Addresses outside today's CIDRs (an `up` with other flags) are not kept.
                if ipaddress.IPv4Address(str(address)) in network:
                    book.assigned[kind][str(owner)] = str(address)
        return book

    @property
    def gateway(self) -> str:
        """The node's bridge: every pod's default route."""
        return str(self.pod_cidr.network_address + 1)

    @property
    def nameserver(self) -> str:
        return str(self.service_cidr.network_address + 10)

    def network(self, kind: str) -> ipaddress.IPv4Network:
        if kind == "pod":
            return self.pod_cidr
        if kind == "service":
            return self.service_cidr
        return ipaddress.IPv4Network(ENTRY_CIDR)

    def reserved(self, kind: str) -> set[ipaddress.IPv4Address]:
        network = self.network(kind)
        base = network.network_address
        found = {base, network.broadcast_address, base + 1}
        if kind == "service":
            found.add(base + 10)
        return found

    def __call__(self, key: AddressKey) -> str:
        kind, owner = key
        if kind == "pod":
            owner = self.pods.get(owner, owner)
        known = self.assigned[kind].get(owner)
        if known is not None:
            return known
        taken = {ipaddress.IPv4Address(a) for a in self.assigned[kind].values()}
        taken |= self.reserved(kind)
        for address in self.network(kind).hosts():
            if address not in taken:
                self.assigned[kind][owner] = str(address)
                return str(address)
        raise ConfigError(f"no free {kind} address left in {self.network(kind)}")

    def keep_only(self, kind: str, owners: Iterable[str]) -> None:
        """Free the addresses of every owner of ``kind`` not in ``owners``."""
        wanted = set(owners)
        self.assigned[kind] = {o: a for o, a in self.assigned[kind].items() if o in wanted}

    def owner_of(self, kind: str, address: str) -> str | None:
        return next((o for o, a in self.assigned[kind].items() if a == address), None)

    def save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.assigned, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
