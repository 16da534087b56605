"""Unix sockets and files only the mesh's own proxies may open."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["restrict_socket"]


def restrict_socket(path: Path, owner: tuple[int, int] | None) -> None:
    """0600, and owned by ``owner`` (the proxies' uid/gid) when given: connecting to a Unix
    socket needs write permission on it, so nobody else can."""
    os.chmod(path, 0o600)
    if owner is not None:
        os.chown(path, *owner)
