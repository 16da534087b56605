"""Every proxy's bootstrap sets the Zipkin reporter's flush runtime keys (Envoy waits for 5 spans
or 5 s by default), in a static layer under the admin layer, as istio-proxy's bootstrap does."""

from __future__ import annotations

from typing import Any, cast

from canarymesh.mesh.model import MeshSettings, ProxyNode, ProxyPorts
from canarymesh.runtime.local.codec import pack
from canarymesh.xds.bootstrap import build_ads_bootstrap, layered_runtime
from canarymesh.xds.tracing import FLUSH_INTERVAL_MS, MIN_FLUSH_SPANS

BOOTSTRAP = "type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap"


def test_the_runtime_layer_sets_the_zipkin_flush() -> None:
    layers = cast(list[dict[str, Any]], layered_runtime()["layers"])
    assert [layer["name"] for layer in layers] == ["static", "admin"]
    assert layers[0]["static_layer"] == {
        "tracing.zipkin.flush_interval_ms": FLUSH_INTERVAL_MS,
        "tracing.zipkin.min_flush_spans": MIN_FLUSH_SPANS,
    }
    assert FLUSH_INTERVAL_MS <= 250  # "promptly": well under Envoy's default of 5000


def test_every_ads_bootstrap_carries_it_and_envoys_schema_accepts_it() -> None:
    proxy = ProxyNode(
        "details-v1-x", "sidecar", "default", "details-v1", (("app", "details"),), "details",
        ProxyPorts(admin=15000),
    )  # fmt: skip
    config = build_ads_bootstrap(proxy, MeshSettings(), xds=15010)
    assert config["layered_runtime"] == layered_runtime()
    assert pack(BOOTSTRAP, config).type_url == BOOTSTRAP


def test_a_percent_of_requests_is_traced_as_istio_does_unless_the_mesh_says_otherwise() -> None:
    from canarymesh.runtime.local.daemon import parse_args
    from canarymesh.xds.tracing import hcm_tracing

    assert hcm_tracing(MeshSettings())["random_sampling"] == {"value": 1.0}
    assert hcm_tracing(MeshSettings(tracing_sampling=100.0))["random_sampling"] == {"value": 100.0}
    # Envoy's client_sampling is left at its default (100%): x-client-trace-id always traces.
    assert "client_sampling" not in hcm_tracing(MeshSettings())
    args = parse_args(["--state-dir", "/tmp/x", "--trace-sampling", "100"])
    assert args.trace_sampling == 100.0
    assert parse_args(["--state-dir", "/tmp/x"]).trace_sampling == 1.0
