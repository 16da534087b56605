"""How the host's Prometheus reaches the sidecars' stats inside the pod network.

The host has no route into the pod network (nothing of the host's is changed), so Prometheus
scrapes through a small Envoy in the node namespace whose one listener is bound on the host's
loopback (``network_namespace_filepath``): Prometheus' ``proxy_url`` points at it, and it forwards
``GET /stats/prometheus`` for ``<pod ip>:15090`` (Istio's stats port) to that pod and refuses
anything else, so it opens no other door into the pods.
"""

from __future__ import annotations

from pathlib import Path

from canarymesh.mesh.capture import STATS_PORT
from canarymesh.runtime.local.envoy import envoy_spec, write_bootstrap
from canarymesh.runtime.local.supervisor import ProcessSpec, TcpProbe
from canarymesh.xds.types import EnvoyJson, typed

__all__ = ["NAME", "build_scrape_proxy_bootstrap", "scrape_proxy_spec"]

NAME = "scrape-proxy"
_HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"


def build_scrape_proxy_bootstrap(port: int, host_netns: str, admin_port: int) -> EnvoyJson:
    route: EnvoyJson = {
        "match": {
            "path": "/stats/prometheus",
            "headers": [
                {
                    "name": ":authority",
                    "string_match": {"safe_regex": {"regex": rf"^[0-9.]+:{STATS_PORT}$"}},
                }
            ],
        },
        "route": {"cluster": "pods", "timeout": "5s"},
        "request_headers_to_add": [
            {"header": {"key": "x-envoy-original-dst-host", "value": "%REQ(:AUTHORITY)%"}}
        ],
    }
    refuse: EnvoyJson = {
        "match": {"prefix": "/"},
        "direct_response": {
            "status": 403,
            "body": {"inline_string": f"only GET /stats/prometheus on a pod's {STATS_PORT}\n"},
        },
    }
    hcm = typed(
        _HCM,
        {
            "stat_prefix": "scrape",
            "route_config": {
                "virtual_hosts": [{"name": "pods", "domains": ["*"], "routes": [route, refuse]}]
            },
            "http_filters": [
                {
                    "name": "envoy.filters.http.router",
                    "typed_config": typed("envoy.extensions.filters.http.router.v3.Router", {}),
                }
            ],
        },
    )
    address: EnvoyJson = {
        "socket_address": {
            "address": "127.0.0.1",
            "port_value": port,
            "network_namespace_filepath": host_netns,
        }
    }
    return {
        "node": {"id": NAME, "cluster": NAME},
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "static_resources": {
            "listeners": [
                {
                    "name": "scrape",
                    "address": address,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                {
                    "name": "pods",
                    "type": "ORIGINAL_DST",
                    "lb_policy": "CLUSTER_PROVIDED",
                    "connect_timeout": "1s",
                    "original_dst_lb_config": {"use_http_header": True},
                }
            ],
        },
    }


def scrape_proxy_spec(
    run_dir: Path, log_dir: Path, port: int, node_netns: str, host_netns: str
) -> ProcessSpec:
    """The proxy's process in the node namespace, ready once its host port accepts."""
    admin_port = 15000  # on the node namespace's own loopback
    path = write_bootstrap(
        run_dir / f"{NAME}.json", build_scrape_proxy_bootstrap(port, host_netns, admin_port)
    )
    launcher = ("ip", "netns", "exec", node_netns)
    spec = envoy_spec(NAME, path, log_dir, admin_port, launcher=launcher)
    # Ready when the host side answers (its admin is inside the node namespace).
    return ProcessSpec(
        name=spec.name,
        argv=spec.argv,
        log_path=spec.log_path,
        probe=TcpProbe(port),
        launcher=launcher,
        detached=True,
        backoff_initial=0.5,
        backoff_max=10.0,
        stop_grace=2.0,
    )
