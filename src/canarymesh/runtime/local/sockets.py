"""Unix sockets and files only the mesh's own proxies may open."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from canarymesh.errors import TemporaryError

__all__ = ["restrict_socket", "serve_grpc_on_socket"]


async def serve_grpc_on_socket(
    path: Path, owner: tuple[int, int] | None, add_servicer: Callable[[Any], None]
) -> Any:
    """A started grpc.aio server on the Unix socket ``path`` (see :func:`restrict_socket`)."""
    path.unlink(missing_ok=True)
    server = grpc.aio.server()
    add_servicer(server)
    if server.add_insecure_port(f"unix:{path}") == 0:
        raise TemporaryError(f"could not bind unix:{path}", delay=1.0)
    await server.start()
    restrict_socket(path, owner)
    return server


def restrict_socket(path: Path, owner: tuple[int, int] | None) -> None:
    """0600, and owned by ``owner`` (the proxies' uid/gid) when given: connecting to a Unix
    socket needs write permission on it, so nobody else can."""
    os.chmod(path, 0o600)
    if owner is not None:
        os.chown(path, *owner)
