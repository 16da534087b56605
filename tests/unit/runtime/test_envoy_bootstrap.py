"""The Envoy bootstrap and launch spec the local mesh uses for every proxy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from canarymesh.mesh.model import MeshSettings, ProxyNode, ProxyPorts, StatsInclusion
from canarymesh.runtime.local.codec import pack
from canarymesh.runtime.local.envoy import envoy_binary, envoy_spec, write_bootstrap
from canarymesh.runtime.local.supervisor import HttpProbe
from canarymesh.xds.bootstrap import build_ads_bootstrap
from canarymesh.xds.names import XDS_CLUSTER

BOOTSTRAP = "type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap"


def test_bootstrap_is_a_valid_envoy_bootstrap_using_ads_for_everything() -> None:
    labels = (("app", "reviews"), ("version", "v2"))
    proxy = ProxyNode(
        "reviews-v2-7d9f", "sidecar", "default", "reviews-v2", labels, "bookinfo-reviews",
        ProxyPorts(admin=15000),
    )  # fmt: skip
    config = cast(dict[str, Any], build_ads_bootstrap(proxy, MeshSettings(), xds=15010))
    assert pack(BOOTSTRAP, config).type_url == BOOTSTRAP  # Envoy's schema accepts it
    node = config["node"]
    assert isinstance(node, dict) and node["id"] == "reviews-v2-7d9f"
    metadata = node["metadata"]
    assert metadata["NAMESPACE"] == "default" and metadata["SERVICE_ACCOUNT"] == "bookinfo-reviews"
    assert metadata["LABELS"] == {"app": "reviews", "version": "v2"}
    dynamic = config["dynamic_resources"]
    assert isinstance(dynamic, dict)
    ads = dynamic["ads_config"]
    assert ads["api_type"] == "GRPC" and ads["set_node_on_first_message_only"] is True
    grpc_service = ads["grpc_services"][0]["envoy_grpc"]
    assert grpc_service["cluster_name"] == XDS_CLUSTER
    assert grpc_service["retry_policy"]["retry_back_off"]["base_interval"] == "0.1s"
    assert (
        dynamic["cds_config"] == dynamic["lds_config"] == {"ads": {}, "resource_api_version": "V3"}
    )
    text = json.dumps(config)
    assert '"port_value": 15010' in text and "http2_protocol_options" in text
    assert '"address": "127.0.0.1", "port_value": 15000' in text
    stats = config["stats_config"]
    assert isinstance(stats, dict) and stats["stats_tags"]


def test_stats_are_istios_default_set_and_what_the_pod_asks_for() -> None:
    extra = StatsInclusion(prefixes=("cluster.outbound",), suffixes=("upstream_rq_time",))
    proxy = ProxyNode(
        "reviews-v2-7d9f", "sidecar", "default", "reviews-v2", (), "bookinfo-reviews",
        ProxyPorts(admin=15000), stats_inclusion=extra,
    )  # fmt: skip
    config = cast(dict[str, Any], build_ads_bootstrap(proxy, MeshSettings(), xds=15010))
    assert pack(BOOTSTRAP, config).type_url == BOOTSTRAP
    patterns = config["stats_config"]["stats_matcher"]["inclusion_list"]["patterns"]
    prefixes = [p["prefix"] for p in patterns if "prefix" in p]
    # istio-agent's required prefixes and its bootstrap's own, then the pod's.
    assert prefixes[:5] == ["reporter=", "cluster_manager", "listener_manager", "server",
                            "cluster.xds-grpc"]  # fmt: skip
    assert prefixes[-1] == "cluster.outbound"
    suffixes = [p["suffix"] for p in patterns if "suffix" in p]
    assert "rbac.allowed" in suffixes and suffixes[-1] == "upstream_rq_time"
    assert {"safe_regex": {"regex": r"vhost\..*\.route\..*"}} in patterns


def test_spec_runs_the_wheels_binary_with_one_worker_and_no_hot_restart(tmp_path: Path) -> None:
    path = write_bootstrap(tmp_path / "b.json", {"node": {"id": "x"}})
    assert json.loads(path.read_text()) == {"node": {"id": "x"}}
    spec = envoy_spec("reviews-v2", path, tmp_path / "logs", 15000)
    assert spec.argv[0] == str(envoy_binary()) and envoy_binary().is_file()
    assert spec.argv[1:] == [
        "--config-path",
        str(path),
        "--concurrency",
        "1",
        "--disable-hot-restart",
        "--drain-strategy",
        "immediate",
        "--drain-time-s",
        "2",
        "--log-level",
        "warning",
    ]
    assert spec.log_path == tmp_path / "logs" / "reviews-v2.log"
    assert spec.probe == HttpProbe("http://127.0.0.1:15000/ready")
