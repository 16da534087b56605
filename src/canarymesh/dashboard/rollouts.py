"""The rollouts view of the dashboard: every Canary's :class:`~canarymesh.views.rollout.RolloutView`
(the object ``canarymesh rollout get`` renders), the observed traffic share and health of its two
versions over time, and the promote / abort / pause / resume actions.

Called by :mod:`canarymesh.dashboard.app`. Records come from the local mesh's rollout store
(:mod:`canarymesh.runtime.local.rollout_store`), written by the canary controller; an action drops
a command there exactly as ``canarymesh rollout promote`` does. Actions need the mesh's token (the
``<state_dir>/token`` file the CLI uses) as a bearer token: whoever can only reach the page can
look, not steer.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from canarymesh.analysis.panels import panel_query
from canarymesh.api.canary import Canary
from canarymesh.dashboard.sources import MeshApi, PromSource
from canarymesh.errors import ConfigError
from canarymesh.ports import state_of
from canarymesh.runtime.local.api_client import TOKEN_FILE
from canarymesh.runtime.local.api_models import CANARY_KIND
from canarymesh.runtime.local.controller_process import ensure_running
from canarymesh.runtime.local.rollout_store import RolloutStore
from canarymesh.views.promjson import finite, matrix
from canarymesh.views.rollout import rollout_view

__all__ = ["COMMANDS", "RolloutsApi"]

COMMANDS = ("promote", "abort", "pause", "resume")
# Observed over time, per version of the canary's host: what the weights did and how each side did.
TIMELINE = ("version-request-rate", "version-success-rate", "version-p99")


class RolloutsApi:
    def __init__(
        self, state_dir: Path | None, mesh: MeshApi | None, prometheus: PromSource | None
    ) -> None:
        self.state_dir = state_dir
        self.mesh = mesh
        self.prometheus = prometheus

    async def list(self, request: web.Request) -> web.Response:
        if self.state_dir is None or self.mesh is None:
            return web.json_response({"rollouts": [], "actions": False})
        store = RolloutStore(self.state_dir)
        rollouts = []
        for key in store.names():
            view = await self._view(store, key)
            if view is not None:
                view["timeline"] = await self._timeline(view, request.query.get("window", "30s"))
                rollouts.append(view)
        return web.json_response({"rollouts": rollouts, "actions": True})

    async def _view(self, store: RolloutStore, key: str) -> dict[str, Any] | None:
        state = state_of(store.load(key))
        if state is None or self.mesh is None:
            return None
        namespace, name = key.split("/")
        items = await self.mesh.resources([CANARY_KIND], namespace, name)
        if not items:
            return None
        view = rollout_view(state, Canary.model_validate(items[0].get("spec") or {})).to_json()
        return {"key": key, "namespace": namespace, **view}

    async def _timeline(self, view: Mapping[str, Any], window: str) -> dict[str, Any]:
        """Per version of the rollout's two subsets: traffic share %, success %, p99 over time."""
        if self.prometheus is None:
            return {}
        host = str(view["host"])
        if "." not in host:
            host = f"{host}.{view['namespace']}.svc.cluster.local"
        variables = {"interval": window, "service": host.replace(".", "\\\\.")}
        end = time.time()
        answers = {
            name: matrix(
                await self.prometheus.query_range(panel_query(name, variables), end - 600, end, 5)
            )
            for name in TIMELINE
        }
        wanted = {str(view["stableSubset"]), str(view["canarySubset"])}
        series: dict[str, dict[str, list[tuple[float, float | None]]]] = {}
        for name, found in answers.items():
            for s in found:
                version = s.labels.get("destination_version", "")
                if version in wanted:
                    scale = 100.0 if name == "version-success-rate" else 1.0
                    series.setdefault(version, {})[name] = [
                        (t, None if (f := finite(v)) is None else f * scale) for t, v in s.points
                    ]
        return series

    async def act(self, request: web.Request) -> web.Response:
        if self.state_dir is None:
            return web.json_response({"error": "read-only: no local mesh to act on"}, status=403)
        token = (self.state_dir / TOKEN_FILE).read_text().strip()
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return web.json_response(
                {"error": f"actions need the mesh's token ({self.state_dir / TOKEN_FILE})"},
                status=401,
            )
        command = request.match_info["command"]
        if command not in COMMANDS:
            raise ConfigError(f"unknown rollout command {command!r}: {', '.join(COMMANDS)}")
        key = f"{request.match_info['namespace']}/{request.match_info['name']}"
        store = RolloutStore(self.state_dir)
        if store.load(key) is None:
            raise ConfigError(f"no rollout of {key}")
        store.send_command(key, command)
        await asyncio.to_thread(ensure_running, self.state_dir)
        return web.json_response({"sent": command, "rollout": key})
