"""How a proxy proves which workload it is: a per-proxy token, derived from the mesh's secret.

The control plane keeps one random secret per mesh (``<state_dir>/mesh-secret``) and gives each
proxy, in its bootstrap file (0600, owned by the proxy's user), ``HMAC(secret, "xds/<proxy id>")``.
Envoy sends it as gRPC metadata on its ADS stream; the ADS server serves a stream only the node
its token names, and answers anything else with PERMISSION_DENIED. Access-log streams carry a
second token (``"als/<proxy id>"``, delivered in the proxy's own listeners over that
authenticated stream), so only the mesh's proxies can write telemetry, each only as itself.

Tokens are derived, not stored, so a restarted control plane accepts the proxies that kept
running (their bootstrap files still hold the same tokens).

Secret files are owned by :data:`SECRETS_UID` where the control plane runs as root: an app run
as root without privileges (``runtime.local.sandbox``) owns no such file and may not read it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = [
    "ALS_PURPOSE",
    "SECRETS_GID",
    "SECRETS_UID",
    "TOKEN_HEADER",
    "XDS_PURPOSE",
    "MeshCredentials",
    "secure_file",
    "write_secret_file",
]

# gRPC metadata keys are lower-case.
TOKEN_HEADER = "x-canarymesh-proxy-token"
XDS_PURPOSE = "xds"
ALS_PURPOSE = "als"
# A user that owns the mesh's secrets and runs nothing (an unprivileged root app cannot read
# them, not being their owner; the proxies, uid 1337, cannot either).
SECRETS_UID = 1338
SECRETS_GID = 1338


def secure_file(path: Path) -> None:
    """Make an existing secret file 0600 and, as root, :data:`SECRETS_UID`'s."""
    os.chmod(path, 0o600)
    if os.geteuid() == 0:
        os.chown(path, SECRETS_UID, SECRETS_GID)


def write_secret_file(path: Path, data: bytes) -> None:
    """``data`` in a new 0600 file, owned by :data:`SECRETS_UID` when we are root."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    if os.geteuid() == 0:
        os.chown(tmp, SECRETS_UID, SECRETS_GID)
    os.replace(tmp, path)


class MeshCredentials:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def load_or_create(cls, path: Path) -> MeshCredentials:
        try:
            secret = path.read_bytes()
        except FileNotFoundError:
            secret = b""
        if len(secret) < 32:
            secret = secrets.token_bytes(32)
            write_secret_file(path, secret)
        return cls(secret)

    def token(self, purpose: str, proxy_id: str) -> str:
        message = f"{purpose}/{proxy_id}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def verify(self, purpose: str, proxy_id: str, token: str | None) -> bool:
        if not token or not proxy_id:
            return False
        return hmac.compare_digest(self.token(purpose, proxy_id), token)
