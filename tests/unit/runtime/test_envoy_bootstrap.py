"""The Envoy bootstrap and launch spec the local mesh uses for every proxy."""

from __future__ import annotations

import json
from pathlib import Path

from canarymesh.runtime.local.codec import pack
from canarymesh.runtime.local.envoy import (
    XDS_CLUSTER,
    EnvoyNode,
    bootstrap,
    envoy_binary,
    envoy_spec,
    write_bootstrap,
)
from canarymesh.runtime.local.supervisor import HttpProbe

BOOTSTRAP = "type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap"


def test_bootstrap_is_a_valid_envoy_bootstrap_using_ads_for_everything() -> None:
    node = EnvoyNode("reviews-v2-7d9f", "reviews.default", {"NAMESPACE": "default"})
    config = bootstrap(node, admin_port=15000, xds_port=15010, stats_config={"stats_tags": []})
    assert pack(BOOTSTRAP, config).type_url == BOOTSTRAP  # Envoy's schema accepts it
    assert config["node"] == {
        "id": "reviews-v2-7d9f",
        "cluster": "reviews.default",
        "metadata": {"NAMESPACE": "default"},
    }
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
    assert config["stats_config"] == {"stats_tags": []}


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
        "--log-level",
        "warning",
    ]
    assert spec.log_path == tmp_path / "logs" / "reviews-v2.log"
    assert spec.probe == HttpProbe("http://127.0.0.1:15000/ready")
