"""The control plane's local HTTP API: JSON over 127.0.0.1, every request with a bearer token.

Started by :mod:`canarymesh.runtime.local.daemon`; the CLI talks to it through
:mod:`canarymesh.runtime.local.api_client`. Bodies and answers are the models of
:mod:`.api_models`. The token is written to ``<state_dir>/token`` with mode 0600, so only the
user who ran ``up`` can drive the mesh. Errors come back as :class:`~.api_models.ApiError`
(``{"error": ..., "kind": "config"|"temporary"|...}``) with 400, 503, 401 or 500, which the
client turns back into the matching :mod:`canarymesh.errors` class.

Bodies are hostile input like any other: larger than ``MAX_API_BODY_BYTES`` (aiohttp's
``client_max_size``), not UTF-8, not JSON, nested too deep or of the wrong shape (the models),
they get a 400 naming the problem; the texts of an apply then go through the api package's
reader and validation, which the CLI's input goes through too.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar, cast

from aiohttp import web
from pydantic import BaseModel, ValidationError

from canarymesh.api.limits import MAX_API_BODY_BYTES, format_size
from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.runtime.local.api_models import (
    ApiError,
    ChangeRequest,
    ConfigCanaryRequest,
    Converged,
    Stopping,
    WaitRequest,
)
from canarymesh.runtime.local.control import ControlPlane, JsonDict
from canarymesh.runtime.local.credentials import write_secret_file

__all__ = ["ApiServer", "write_token"]

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def write_token(path: Path) -> str:
    """The API's token in ``path``, readable by the mesh's secrets owner only (the CLI as root
    or as the mesh's user reads it; an unprivileged app in a pod does not). A restarted control
    plane keeps the token its clients hold (the canary controller, a dashboard); ``down``
    removes it, so the next mesh gets a fresh one."""
    try:
        kept = path.read_text().strip()
    except OSError:
        kept = ""
    token = kept if len(kept) >= 32 else secrets.token_urlsafe(32)
    write_secret_file(path, token.encode())
    return token


class ApiServer:
    def __init__(self, control: ControlPlane, token: str) -> None:
        self.control = control
        self.token = token
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_API_BODY_BYTES)
        routes = [
            web.get("/v1/status", self._status),
            web.post("/v1/apply", self._apply),
            web.post("/v1/delete", self._delete),
            web.get("/v1/resources", self._resources),
            web.get("/v1/pods", self._pods),
            web.get("/v1/proxy-status", self._proxy_status),
            web.get("/v1/proxy-config", self._proxy_config),
            web.get("/v1/logs", self._logs),
            web.post("/v1/wait", self._wait),
            web.post("/v1/config-canary", self._config_canary),
            web.get("/v1/config-canary", self._config_canary_state),
            web.get("/v1/exec-target", self._exec_target),
            web.post("/v1/shutdown", self._shutdown),
        ]
        app.add_routes(routes)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = cast(object, site._server)  # the bound port when port=0
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {self.token}".encode()):
            return _error("missing or wrong bearer token", "auth", 401)
        try:
            return await handler(request)
        except ConfigError as err:
            return _error(str(err), "config", 400)
        except TemporaryError as err:
            return _error(str(err), "temporary", 503)
        except KeyError as err:
            return _error(f"missing field {err}", "config", 400)
        except Exception as err:  # a bug: keep serving, tell the caller, keep the traceback
            log.exception("%s %s failed", request.method, request.path)
            return _error(f"internal error: {err!r}", "internal", 500)

    async def _status(self, request: web.Request) -> web.Response:
        return _answer(self.control.status())

    async def _apply(self, request: web.Request) -> web.Response:
        return await self._change(request, delete=False)

    async def _delete(self, request: web.Request) -> web.Response:
        return await self._change(request, delete=True)

    async def _change(self, request: web.Request, delete: bool) -> web.Response:
        body = _request(ChangeRequest, await _body(request))
        return _answer(await self.control.change(body.documents, delete, body.wait, body.timeout))

    async def _resources(self, request: web.Request) -> web.Response:
        kinds = request.query.get("kinds", "").split(",")
        query = request.query
        return _answer(self.control.resources(kinds, query.get("namespace"), query.get("name")))

    async def _pods(self, request: web.Request) -> web.Response:
        return _answer(self.control.pods())

    async def _exec_target(self, request: web.Request) -> web.Response:
        query = request.query
        return _answer(
            self.control.exec_target(query["pod"], query.get("namespace"), query.get("container"))
        )

    async def _proxy_status(self, request: web.Request) -> web.Response:
        return _answer(self.control.proxy_status())

    async def _proxy_config(self, request: web.Request) -> web.Response:
        query = request.query
        return _json(
            await self.control.proxy_config(
                query["pod"], query.get("section", "all"), query.get("namespace")
            )
        )

    async def _logs(self, request: web.Request) -> web.Response:
        query = request.query
        tail = int(query["tail"]) if query.get("tail") else None
        return _answer(
            self.control.logs(query["pod"], query.get("container"), tail, query.get("namespace"))
        )

    async def _wait(self, request: web.Request) -> web.Response:
        body = _request(WaitRequest, await _body(request))
        await self.control.wait_converged(body.timeout)
        return _answer(Converged(converged=True))

    async def _config_canary(self, request: web.Request) -> web.Response:
        body = _request(ConfigCanaryRequest, await _body(request))
        return _answer(
            await self.control.config_canary(body.namespace, body.name, body.percent, body.promote)
        )

    async def _config_canary_state(self, request: web.Request) -> web.Response:
        query = request.query
        return _answer(self.control.config_canary_state(query["namespace"], query["name"]))

    async def _shutdown(self, request: web.Request) -> web.Response:
        self.control.shutdown.set()
        return _answer(Stopping(stopping=True))


async def _body(request: web.Request) -> JsonDict:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = format_size(MAX_API_BODY_BYTES)
        raise ConfigError(f"the request body is larger than {limit}") from None
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"the request body is not UTF-8 (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"the request body is not JSON: {err.msg} at {err.pos}") from None
    except RecursionError:
        raise ConfigError("the request body nests too deep") from None
    if not isinstance(body, dict):
        raise ConfigError("the request body is not a JSON object")
    return body


M = TypeVar("M", bound=BaseModel)


def _request(model: type[M], body: JsonDict) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"bad request body: {problems}") from None


def _answer(model: BaseModel) -> web.Response:
    return _json(model.model_dump())


def _error(message: str, kind: str, status: int) -> web.Response:
    return _json(ApiError.model_validate({"error": message, "kind": kind}).model_dump(), status)


def _json(body: JsonDict, status: int = 200) -> web.Response:
    # default=str: an applied document may hold YAML dates, which JSON has no type for.
    return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, default=str))
