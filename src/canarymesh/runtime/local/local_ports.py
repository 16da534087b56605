"""Loopback ports of the shared network: free ports, kept per key while the mesh runs.

``build_mesh`` asks a :class:`PortBook` for every local port on the shared network (and for
gateway server ports in both modes: that is where the host reaches a gateway).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from canarymesh.mesh.build import PortKey

__all__ = ["PortBook", "PortRecord", "free_port"]


def free_port(taken: set[int]) -> int:
    """A loopback port nothing listens on and that this mesh has not handed out."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


@dataclass(slots=True)
class PortBook:
    """build_mesh's port allocator: real free ports, the same for the same key while we run,
    and (with ``path``) across a restart of the control plane: the apps it adopts were started
    with their sidecar's ports in their environment (``HTTP_PROXY``), so a new port would mean
    restarting them.

    ``pods`` renames build_mesh's replica ids (``reviews-v1-0``) to pod proxy ids, so a replaced
    pod gets fresh ports and can run beside the pod it replaces.
    """

    fixed: dict[PortKey, int] = field(default_factory=dict)
    assigned: dict[PortKey, int] = field(default_factory=dict)
    taken: set[int] = field(default_factory=set)
    pods: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @staticmethod
    def load(path: Path, keep: bool) -> PortBook:
        """The book kept in ``path`` when ``keep`` (the control plane adopts running pods),
        else a new one (the file is started again)."""
        book = PortBook(path=path)
        if not keep:
            path.unlink(missing_ok=True)
            return book
        try:
            rows = json.loads(path.read_text())
            for kind, proxy, detail, port in rows:
                book.assigned[(str(kind), str(proxy), str(detail))] = int(port)
        except (OSError, ValueError, TypeError):
            return PortBook(path=path)  # unreadable: fresh ports (the pods are restarted)
        book.taken.update(book.assigned.values())
        return book

    def __call__(self, key: PortKey) -> int:
        kind, proxy, detail = key
        key = (kind, self.pods.get(proxy, proxy), detail)
        if key in self.fixed:
            return self.fixed[key]
        if key not in self.assigned:
            self.assigned[key] = free_port(self.taken)
            self._save()
        return self.assigned[key]

    def _save(self) -> None:
        if self.path is None:
            return
        rows = [[*key, port] for key, port in sorted(self.assigned.items())]
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(rows))
        os.replace(temporary, self.path)


@dataclass(slots=True)
class PortRecord:
    """The control plane's own ports, kept across restarts in ``ports.json``: proxies and
    Prometheus that outlive a crashed control plane know them (a bootstrap names the ADS port,
    Prometheus' adopted process its listen address)."""

    path: Path
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> PortRecord:
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = {}
        ports = {str(k): int(v) for k, v in saved.items() if isinstance(v, int)}
        return cls(path, ports)

    def reuse(self, name: str) -> int:
        """The port ``name`` had (0 when none: let the server pick); a new free one for a
        process we start ourselves (Prometheus) when none was kept."""
        port = self.ports.get(name)
        if port is None and name in ("prometheus", "scrape"):
            port = self.ports[name] = free_port(set(self.ports.values()))
        return port or 0

    def bound(self, name: str, port: int) -> int:
        self.ports[name] = port
        return port

    def save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(self.ports, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
