"""Whether the proxies applied a Canary's weights, asked of istiod (the source of
``istioctl proxy-status``): its ``/debug/syncz`` says which proxies acknowledged their latest
route push, its ``/debug/config_dump?proxyID=`` what that push held. Shell
(:class:`IstiodVerifier`) around a pure reading of Envoy's route dump
(:func:`weights_in_routes`); the router asks it before a step's clock starts.

The sample: every proxy in the Canary's namespace that istiod knows (up to ``sample``), since
those are the callers of the target in Bookinfo's layout. Istio leaves out destinations of
weight 0, so the comparison is on the non-zero weights. A config canary
(:mod:`.config_router`) asks only whether the proxies it labelled acknowledged their pushes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import urllib3

from canarymesh.errors import TemporaryError

__all__ = ["IstiodVerifier", "sync_rows", "weights_in_routes"]

PUSHED = ("cluster", "listener", "route")  # what a config canary changes, by xDS type


def weights_in_routes(dump: Mapping[str, Any], host_fqdn: str) -> dict[str, int] | None:
    """The split of the last route of ``host_fqdn``'s virtual host, by subset (or, for
    subset-less clusters such as Gateway API's ``reviews-v1``, by the Service's short name);
    None when the dump has no such route."""
    found: dict[str, int] | None = None
    for config in dump.get("configs", []):
        for dynamic in config.get("dynamic_route_configs", []):
            for vhost in dynamic.get("route_config", {}).get("virtual_hosts", []):
                if not str(vhost.get("name", "")).startswith(f"{host_fqdn}:"):
                    continue
                # The weighted route is the last one: A/B and affinity routes come before it.
                for route in vhost.get("routes", []):
                    if route.get("route") is not None:
                        found = _split(route["route"])
    return found


def _split(action: Mapping[str, Any]) -> dict[str, int]:
    if "weighted_clusters" in action:
        clusters = action["weighted_clusters"].get("clusters", [])
        split = {_key(c["name"]): int(c.get("weight", 0)) for c in clusters}
    else:
        split = {_key(str(action.get("cluster", ""))): 100}
    return {k: v for k, v in split.items() if v}


def _key(cluster: str) -> str:
    # outbound|9080|v3|reviews.webapps… -> v3; outbound|9080||reviews-v3.webapps… -> reviews-v3
    parts = cluster.split("|")
    if len(parts) != 4:
        return cluster
    return parts[2] or parts[3].split(".", 1)[0]


def sync_rows(answer: Any) -> list[dict[str, Any]]:
    """istiod's per-proxy sync status: a bare list (what ``istioctl proxy-status`` and Kiali
    read), or the same list under a ``status`` key, as some releases wrap it."""
    if isinstance(answer, dict):
        answer = next((v for k, v in answer.items() if k.lower() == "status"), None)
    if not isinstance(answer, list):
        raise TemporaryError(f"istiod /debug/syncz answered in an unknown shape: {answer!r:.200}")
    return cast(list[dict[str, Any]], answer)


class IstiodVerifier:
    """Asks istiod's debug endpoints (port 15014) about the proxies of one namespace."""

    def __init__(self, url: str, *, sample: int = 5, timeout: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self.sample = sample
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(total=timeout), retries=False)

    def verify(self, namespace: str, host_fqdn: str, expected: Mapping[str, int]) -> bool:
        want = {k: v for k, v in expected.items() if v}
        proxies = self._synced_proxies(namespace)
        if proxies is None:
            return False
        for proxy in proxies[: self.sample]:
            dump = self._get(f"/debug/config_dump?proxyID={proxy}")
            if weights_in_routes(cast(dict[str, Any], dump), host_fqdn) != want:
                return False
        return True

    def acknowledged(self, namespace: str, pods: Sequence[str]) -> bool:
        """Every named pod of ``namespace`` is connected to istiod and acknowledged the latest
        cluster, listener and route push it was sent (a NACK leaves it unacknowledged)."""
        rows = {str(row.get("proxy")): row for row in sync_rows(self._get("/debug/syncz"))}
        for pod in pods:
            row = rows.get(f"{pod}.{namespace}")
            if row is None or any(
                row.get(f"{xds}_sent") != row.get(f"{xds}_acked") for xds in PUSHED
            ):
                return False
        return True

    def _synced_proxies(self, namespace: str) -> list[str] | None:
        """The namespace's proxies, or None while one of them has an unacknowledged push."""
        rows = sync_rows(self._get("/debug/syncz"))
        mine = sorted(
            (row for row in rows if str(row.get("proxy", "")).endswith(f".{namespace}")),
            key=lambda row: str(row["proxy"]),
        )
        if any(row.get("route_sent") != row.get("route_acked") for row in mine):
            return None
        return [str(row["proxy"]) for row in mine]

    def _get(self, path: str) -> Any:
        try:
            response = self._http.request("GET", self.url + path)
        except urllib3.exceptions.HTTPError as err:
            raise TemporaryError(f"istiod at {self.url} unreachable: {err!r}", delay=2.0) from err
        if response.status != 200:
            raise TemporaryError(f"istiod {path}: {response.status}", delay=2.0)
        return json.loads(response.data)
