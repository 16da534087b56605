"""A watch of every Canary in the cluster, kept as an in-memory cache, so the controller loop can
ask "which Canaries exist" on every tick without listing them from the API server. Shell; the
in-cluster entry point starts it and the loop's Canary source reads it.

The usual informer pattern, small: list (which gives a resourceVersion), then watch from that
version; on any error or expiry (410 Gone) list again. ``synced`` says whether the first list
completed, which the readiness probe reports.
"""

from __future__ import annotations

import copy
import logging
import threading
from typing import Any, cast

from kubernetes import watch
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from canarymesh.api.canary import API_GROUP
from canarymesh.runtime.kube.client import KubeApi
from canarymesh.runtime.kube.crd import PLURAL, VERSION

__all__ = ["CanaryWatch"]

log = logging.getLogger("canarymesh.controller")


class CanaryWatch:
    def __init__(self, api: KubeApi, *, timeout_seconds: int = 300, retry: float = 2.0) -> None:
        self.api = api
        self.timeout_seconds, self.retry = timeout_seconds, retry
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.synced = threading.Event()
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._run, name="canary-watch", daemon=True)

    def start(self) -> CanaryWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(timeout=5)

    def objects(self) -> list[dict[str, Any]]:
        """Every Canary as last seen, sorted by namespace/name."""
        with self._lock:
            return [copy.deepcopy(self._objects[k]) for k in sorted(self._objects)]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version = self._relist()
                self.synced.set()
                self._follow(version)
            except (ApiException, HTTPError, ValueError) as err:
                log.warning("watch of Canaries interrupted (%s); listing again", err)
                self._stop.wait(self.retry)

    def _relist(self) -> str:
        found = cast(
            dict[str, Any], self.api.custom.list_cluster_custom_object(API_GROUP, VERSION, PLURAL)
        )
        with self._lock:
            self._objects = {_key(o): o for o in found.get("items", [])}
        return str(found.get("metadata", {}).get("resourceVersion", ""))

    def _follow(self, version: str) -> None:
        stream = self._watch.stream(  # type: ignore[no-untyped-call]
            self.api.custom.list_cluster_custom_object, API_GROUP, VERSION, PLURAL,
            resource_version=version, timeout_seconds=self.timeout_seconds,
        )  # fmt: skip
        for event in stream:
            if self._stop.is_set():
                return
            kind, obj = event["type"], cast(dict[str, Any], event["object"])
            if kind == "ERROR":
                raise ValueError(f"watch error: {obj.get('message', obj)}")
            with self._lock:
                if kind == "DELETED":
                    self._objects.pop(_key(obj), None)
                elif kind in ("ADDED", "MODIFIED"):
                    self._objects[_key(obj)] = obj


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return str(meta.get("namespace", "default")), str(meta.get("name", ""))
