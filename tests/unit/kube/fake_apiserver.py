"""A small Kubernetes API server on 127.0.0.1 for the cluster runtime's tests: the REST endpoints
``canarymesh.runtime.kube`` calls (custom objects get/list/patch/replace/delete incl. the status
subresource, server-side apply, JSON and merge patches, Leases with resourceVersion conflicts,
Events, and the core group's pods and services: ``/api/v1``, recorded with group ""), so the
real ``kubernetes`` client runs its whole code path (URL building, serialisation, content types,
error mapping) against it. Every request is recorded as (verb, group, resource) so a test can
compare what the adapters did with what deploy/rbac.yaml grants.

Semantics kept from the real server where the adapters depend on them: an apply needs a
``fieldManager``, creates a missing object, and its lists replace the stored lists (Istio's
CRDs declare no list keys: atomic lists); PUT and create honour resourceVersion (409 on a
stale one); a JSON patch whose ``test`` fails is 422; unknown objects are 404 Status objects;
a MicroTime without six fractional digits is 400, as Go's RFC3339Micro parser refuses it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.processes import free_port

Obj = dict[str, Any]
CORE = "/api/{version}"  # the core group ("" in RBAC) lives under /api, not /apis/<group>


@dataclass
class FakeApiServer:
    objects: dict[tuple[str, str, str, str], Obj] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    applies: list[tuple[str, str, bool, Obj]] = field(default_factory=list)
    # (resourceVersion, type, group, plural, object) of every change, for watches
    changes: list[tuple[int, str, str, str, Obj]] = field(default_factory=list)
    version: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- test helpers ------------------------------------------------------------------------

    def put(self, group: str, plural: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", f"uid-{meta['name']}")
        self.version += 1
        meta["resourceVersion"] = str(self.version)
        key = (group, plural, meta["namespace"], meta["name"])
        change = "MODIFIED" if key in self.objects else "ADDED"
        self.objects[key] = copy.deepcopy(obj)
        self.changes.append((self.version, change, group, plural, copy.deepcopy(obj)))
        return obj

    def delete(self, group: str, plural: str, namespace: str, name: str) -> None:
        obj = self.objects.pop((group, plural, namespace, name))
        self.version += 1
        self.changes.append((self.version, "DELETED", group, plural, obj))

    def object(self, group: str, plural: str, namespace: str, name: str) -> Obj:
        return copy.deepcopy(self.objects[(group, plural, namespace, name)])

    def verbs(self) -> set[tuple[str, str, str]]:
        return set(self.requests)

    # --- serving -----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        for base in ("/apis/{group}/{version}", CORE):
            app.router.add_route("GET", base + "/{plural}", self.list_all)
            app.router.add_route("GET", base + "/namespaces/{ns}/{plural}", self.list_ns)
            app.router.add_route("POST", base + "/namespaces/{ns}/{plural}", self.create)
            item = base + "/namespaces/{ns}/{plural}/{name}"
            app.router.add_route("GET", item, self.get)
            app.router.add_route("PUT", item, self.replace)
            app.router.add_route("PATCH", item, self.patch)
            app.router.add_route("DELETE", item, self.remove)
            app.router.add_route("GET", item + "/status", self.get)
            app.router.add_route("PATCH", item + "/status", self.patch)
        return app

    def _record(self, request: web.Request, verb: str) -> None:
        resource = request.match_info["plural"]
        if request.path.endswith("/status"):
            resource += "/status"
        self.requests.append((verb, _group(request), resource))

    async def list_all(self, request: web.Request) -> web.StreamResponse:
        group, plural = _group(request), request.match_info["plural"]
        if request.query.get("watch") in ("true", "1", "True"):
            self._record(request, "watch")
            return await self._watch(request, group, plural)
        self._record(request, "list")
        items = [o for (g, p, _, _), o in sorted(self.objects.items()) if (g, p) == (group, plural)]
        meta = {"resourceVersion": str(self.version)}
        return web.json_response({"kind": "List", "items": items, "metadata": meta})

    async def _watch(self, request: web.Request, group: str, plural: str) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "application/json"
        await response.prepare(request)
        seen = int(request.query.get("resourceVersion") or 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(request.query.get("timeoutSeconds") or 5)
        while loop.time() < deadline:
            for version, change, g, p, obj in list(self.changes):
                if version > seen and (g, p) == (group, plural):
                    line = json.dumps({"type": change, "object": obj}) + "\n"
                    await response.write(line.encode())
                    seen = version
            await asyncio.sleep(0.02)
        return response

    async def list_ns(self, request: web.Request) -> web.Response:
        self._record(request, "list")
        group, (plural, ns) = _group(request), (request.match_info[k] for k in ("plural", "ns"))
        items = [
            o
            for (g, p, n, _), o in sorted(self.objects.items())
            if (g, p, n) == (group, plural, ns)
        ]
        return web.json_response({"kind": "List", "items": items, "metadata": {}})

    def _key(self, request: web.Request) -> tuple[str, str, str, str]:
        info = request.match_info
        return _group(request), info["plural"], info["ns"], info["name"]

    async def get(self, request: web.Request) -> web.Response:
        self._record(request, "get")
        found = self.objects.get(self._key(request))
        if found is None:
            return _status(404, "NotFound", f"{request.match_info['name']} not found")
        return web.json_response(found)

    async def create(self, request: web.Request) -> web.Response:
        self._record(request, "create")
        body = await request.json()
        if not _micro_times_ok(body):
            return _status(400, "BadRequest", "a MicroTime must be RFC 3339 with 6 decimals")
        group, (plural, ns) = _group(request), (request.match_info[k] for k in ("plural", "ns"))
        name = body["metadata"]["name"]
        with self.lock:
            if (group, plural, ns, name) in self.objects:
                return _status(409, "AlreadyExists", f"{name} already exists")
            body["metadata"]["namespace"] = ns
            return web.json_response(self.put(group, plural, body), status=201)

    async def replace(self, request: web.Request) -> web.Response:
        self._record(request, "update")
        body = await request.json()
        if not _micro_times_ok(body):
            return _status(400, "BadRequest", "a MicroTime must be RFC 3339 with 6 decimals")
        key = self._key(request)
        with self.lock:
            current = self.objects.get(key)
            if current is None:
                return _status(404, "NotFound", "not found")
            if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
                return _status(409, "Conflict", "the object has been modified")
            return web.json_response(self.put(key[0], key[1], body))

    async def remove(self, request: web.Request) -> web.Response:
        self._record(request, "delete")
        key = self._key(request)
        with self.lock:
            if key not in self.objects:
                return _status(404, "NotFound", f"{key[3]} not found")
            self.delete(*key)
        body = {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        return web.json_response(body)

    async def patch(self, request: web.Request) -> web.Response:
        self._record(request, "patch")
        key = self._key(request)
        content_type = request.headers.get("Content-Type", "")
        body = await request.json()
        with self.lock:
            current = self.objects.get(key)
            status_only = request.path.endswith("/status")
            if current is None and content_type == "application/apply-patch+yaml":
                current = {"metadata": {"name": key[3], "namespace": key[2]}}  # apply creates
            if current is None or (status_only and key not in self.objects):
                return _status(404, "NotFound", f"{key[3]} not found")
            if content_type == "application/apply-patch+yaml":
                manager = request.query.get("fieldManager")
                if not manager:
                    return _status(422, "Invalid", "fieldManager is required for apply")
                force = request.query.get("force") == "true"
                self.applies.append((manager, key[1], status_only, copy.deepcopy(body)))
                part = {"status": body.get("status", {})} if status_only else _no_status(body)
                updated = _merge(current, part, lists_replace=True)
            elif content_type == "application/json-patch+json":
                try:
                    updated = _json_patch(current, body)
                except ValueError as err:
                    return _status(422, "Invalid", str(err))
                force = False
            elif content_type == "application/merge-patch+json":
                updated = _merge(current, body, lists_replace=True, none_deletes=True)
                force = False
            else:
                return _status(415, "UnsupportedMediaType", content_type)
            del force
            return web.json_response(self.put(key[0], key[1], updated))

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.port = free_port()
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._runner = web.AppRunner(self.app(), access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
            ready.set()

        def run() -> None:
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10), "fake API server did not start"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


def _group(request: web.Request) -> str:
    return request.match_info.get("group", "")


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
            "message": message, "code": code}  # fmt: skip
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


# The API server parses MicroTime (Lease renewTime/acquireTime, Event eventTime) with Go's
# RFC3339Micro layout, which needs exactly six fractional digits.
_MICRO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")


def _micro_times_ok(body: Obj) -> bool:
    spec = body.get("spec") or {}
    times = [spec.get("renewTime"), spec.get("acquireTime"), body.get("eventTime")]
    return all(_MICRO.match(t) for t in times if t is not None)


def _no_status(body: Obj) -> Obj:
    return {k: v for k, v in body.items() if k != "status"}


def _merge(base: Any, patch: Any, *, lists_replace: bool, none_deletes: bool = False) -> Any:
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None and none_deletes:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(
                out[key], value, lists_replace=lists_replace, none_deletes=none_deletes
            )
        else:
            out[key] = copy.deepcopy(value)
    return out


def _json_patch(doc: Obj, ops: list[Obj]) -> Obj:
    out = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = out
        for part in parts[:-1]:
            if part not in parent:
                raise ValueError(f"path {op['path']} does not exist")
            parent = parent[part]
        last = parts[-1]
        if op["op"] == "test":
            if parent.get(last) != op["value"]:
                raise ValueError(f"test of {op['path']} failed")
        elif op["op"] == "remove":
            if last not in parent:
                raise ValueError(f"path {op['path']} does not exist")
            del parent[last]
        elif op["op"] in ("add", "replace"):
            parent[last] = op["value"]
        else:
            raise ValueError(f"op {op['op']} not supported")
    return out
