"""The defaults istiod 1.31 writes that Envoy would otherwise fill differently, each checked on
the translation and, where a request shows it, through the simulator (docs/istio-fidelity.md).
The live counterparts on real Envoys are in tests/integration/test_envoy_live_istio_defaults.py.
"""

from __future__ import annotations

import pytest

from canarymesh.api.istio_networking import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    HTTPFaultInjection,
    HTTPRetry,
    LoadBalancerSettings,
    OutlierDetection,
)
from canarymesh.mesh.model import MeshSettings
from canarymesh.xds import actions, clusters, names, tls
from canarymesh.xds.simulate import Request, header_matches, simulate
from canarymesh.xds.types import EnvoyJson, JsonValue
from tests.unit.xds.meshes import bookinfo, inbound_port, snapshot

WITHOUT_JASON = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews]
  http:
  - match:
    - withoutHeaders:
        end-user: {exact: jason}
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
"""
V1 = "outbound|9080|v1|reviews.default.svc.cluster.local"
V2 = "outbound|9080|v2|reviews.default.svc.cluster.local"


def threshold_of(cluster: EnvoyJson) -> dict[str, JsonValue]:
    breakers = cluster["circuit_breakers"]
    assert isinstance(breakers, dict) and isinstance(breakers["thresholds"], list)
    first = breakers["thresholds"][0]
    assert isinstance(first, dict)
    return first


def test_without_headers_matches_a_request_that_lacks_the_header_as_on_istio() -> None:
    mesh = bookinfo("networking/destination-rule-all.yaml", extra=WITHOUT_JASON)
    snap = snapshot(mesh, "productpage-v1-0")
    assert simulate(snap, Request("reviews:9080")).cluster == V2
    assert simulate(snap, Request("reviews:9080", headers={"end-user": "bob"})).cluster == V2
    assert simulate(snap, Request("reviews:9080", headers={"end-user": "jason"})).cluster == V1


@pytest.mark.parametrize(
    ("matcher", "headers", "expected"),
    [
        # Envoy's HeaderUtility::matchHeaders on a missing header: only a presence test holds.
        ({"string_match": {"exact": "a"}, "invert_match": True}, {}, False),
        ({"string_match": {"exact": "a"}}, {}, False),
        ({"present_match": True, "invert_match": True}, {}, True),
        ({"present_match": False}, {}, True),
        ({"present_match": True}, {}, False),
        # ... unless the missing header is read as "".
        (
            {
                "string_match": {"exact": "a"},
                "invert_match": True,
                "treat_missing_header_as_empty": True,
            },
            {},
            True,
        ),
        ({"string_match": {"exact": ""}, "treat_missing_header_as_empty": True}, {}, True),
        ({"string_match": {"exact": "a"}, "invert_match": True}, {"x": "a"}, False),
        ({"string_match": {"exact": "a"}, "invert_match": True}, {"x": "b"}, True),
    ],
)
def test_simulated_header_matching_follows_envoy(
    matcher: EnvoyJson, headers: dict[str, str], expected: bool
) -> None:
    request = Request("reviews:9080", headers=headers)
    assert header_matches({"name": "x", **matcher}, request) is expected


def test_a_presence_test_in_without_headers_gets_no_missing_as_empty_flag() -> None:
    # Envoy refuses treat_missing_header_as_empty next to present_match.
    mesh = bookinfo(
        "networking/destination-rule-all.yaml",
        extra=WITHOUT_JASON.replace("{exact: jason}", "{}"),
    )
    snap = snapshot(mesh, "productpage-v1-0")
    assert simulate(snap, Request("reviews:9080")).cluster == V2
    assert simulate(snap, Request("reviews:9080", headers={"end-user": "x"})).cluster == V1


def test_load_balancer_defaults_to_least_request_and_names_map_as_istiod() -> None:
    assert clusters.translate_load_balancer(None) == {"lb_policy": "LEAST_REQUEST"}
    for simple, policy in [
        ("UNSPECIFIED", "LEAST_REQUEST"),
        ("LEAST_CONN", "LEAST_REQUEST"),
        ("ROUND_ROBIN", "ROUND_ROBIN"),
        ("RANDOM", "RANDOM"),
    ]:
        lb = LoadBalancerSettings.model_validate({"simple": simple})
        assert clusters.translate_load_balancer(lb)["lb_policy"] == policy
    warm = LoadBalancerSettings.model_validate({"warmupDurationSecs": "30s"})
    assert clusters.translate_load_balancer(warm) == {
        "lb_policy": "LEAST_REQUEST",
        "least_request_lb_config": {"slow_start_config": {"slow_start_window": "30s"}},
    }


def test_every_outbound_cluster_disables_the_panic_threshold() -> None:
    snap = snapshot(bookinfo("networking/destination-rule-all.yaml"), "productpage-v1-0")
    outbound = [c for c in snap.clusters if str(c["name"]).startswith("outbound|")]
    assert outbound
    for cluster in outbound:
        assert cluster["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}
        assert cluster["lb_policy"] == "LEAST_REQUEST"


def test_outlier_detection_keeps_ejected_hosts_out_unless_min_health_percent_is_set() -> None:
    outlier = OutlierDetection.model_validate({"consecutive5xxErrors": 1})
    out = clusters.translate_outlier_detection(outlier)
    assert out["common_lb_config"] == {"healthy_panic_threshold": {"value": 0.0}}
    detection = out["outlier_detection"]
    assert isinstance(detection, dict)
    assert detection["consecutive_5xx"] == 1 and detection["enforcing_consecutive_5xx"] == 100
    with_floor = OutlierDetection.model_validate(
        {"consecutive5xxErrors": 1, "minHealthPercent": 30}
    )
    assert clusters.translate_outlier_detection(with_floor)["common_lb_config"] == {
        "healthy_panic_threshold": {"value": 30.0}
    }
    # istiod ignores the deprecated consecutiveErrors: Envoy's default (5) applies.
    legacy = clusters.translate_outlier_detection(
        OutlierDetection.model_validate({"consecutiveErrors": 2})
    )
    assert isinstance(legacy["outlier_detection"], dict)
    assert "consecutive_5xx" not in legacy["outlier_detection"]


def test_zero_connection_pool_limits_keep_the_maximum_as_istiod_does() -> None:
    pool = ConnectionPoolSettings.model_validate(
        {"tcp": {"maxConnections": 0}, "http": {"maxRetries": 0, "http1MaxPendingRequests": 5}}
    )
    threshold = threshold_of(clusters.translate_connection_pool(pool))
    assert threshold["max_connections"] == clusters.UNLIMITED
    assert threshold["max_retries"] == clusters.UNLIMITED
    assert threshold["max_pending_requests"] == 5


def test_inbound_clusters_get_maximum_circuit_breakers_or_the_rule_connection_pool() -> None:
    plain = snapshot(bookinfo(), "reviews-v1-0").named(names.CLUSTER)["inbound|9080||"]
    assert plain["circuit_breakers"] == {"thresholds": [clusters.default_thresholds()]}
    rule = """
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: default}
spec:
  host: reviews
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 10}}
  subsets:
  - name: v1
    labels: {version: v1}
    trafficPolicy:
      connectionPool: {tcp: {maxConnections: 1}}
"""
    limited = snapshot(bookinfo(extra=rule), "reviews-v1-0").named(names.CLUSTER)["inbound|9080||"]
    # The top-level policy applies; istiod never reads a subset's for the server side.
    assert threshold_of(limited)["max_connections"] == 10


def test_route_timeout_also_caps_grpc_timeout_headers() -> None:
    assert actions.timeouts(None) == {"timeout": "0s", "max_grpc_timeout": "0s"}
    assert actions.timeouts("2.5s") == {"timeout": "2.5s", "max_grpc_timeout": "2.5s"}


def test_retries_follow_istiod() -> None:
    assert "retry_host_predicate" not in actions.default_retry_policy(consistent_hash=True)
    retry = actions.translate_retries(
        HTTPRetry.model_validate({"attempts": 2, "retryOn": "5xx,503,gateway-error"}),
        consistent_hash=True,
    )
    assert retry is not None
    assert retry["retry_on"] == "5xx,gateway-error,retriable-status-codes"
    assert retry["retriable_status_codes"] == [503]
    assert "retry_host_predicate" not in retry
    explicit = actions.translate_retries(
        HTTPRetry.model_validate({"attempts": 1, "retryIgnorePreviousHosts": True}), True
    )
    assert explicit is not None and "retry_host_predicate" in explicit
    assert actions.translate_retries(HTTPRetry.model_validate({"attempts": 0})) is None


def test_a_fault_without_percentage_injects_nothing_as_on_istio() -> None:
    fault = actions.translate_fault(
        HTTPFaultInjection.model_validate(
            {"delay": {"fixedDelay": "1s"}, "abort": {"grpcStatus": "UNAVAILABLE"}}
        )
    )
    assert fault is not None
    assert fault["delay"] == {
        "fixed_delay": "1s",
        "percentage": {"numerator": 0, "denominator": "HUNDRED"},
    }
    assert fault["abort"] == {"grpc_status": 14}  # no percentage: Envoy aborts 0 %


def test_registry_only_answers_502_for_hosts_outside_the_mesh() -> None:
    closed = bookinfo(settings=MeshSettings(allow_any=False))
    result = simulate(snapshot(closed, "productpage-v1-0"), Request("example.com"))
    assert (result.virtual_host, result.status) == (names.BLOCK_ALL_VHOST, 502)
    opened = simulate(snapshot(bookinfo(), "productpage-v1-0"), Request("example.com"))
    assert opened.cluster == names.PASSTHROUGH_CLUSTER


@pytest.mark.parametrize(
    ("settings", "validation", "sni", "auto"),
    [
        (
            {"mode": "SIMPLE"},
            {"trusted_ca": {"filename": tls.SYSTEM_ROOTS}},
            None,
            {"auto_sni": True, "auto_san_validation": True},
        ),
        (
            {"mode": "SIMPLE", "caCertificates": "/ca.pem", "subjectAltNames": ["api.example"]},
            {
                "trusted_ca": {"filename": "/ca.pem"},
                "match_typed_subject_alt_names": [
                    {"san_type": "DNS", "matcher": {"exact": "api.example"}}
                ],
            },
            None,
            {"auto_sni": True},
        ),
        (
            {"mode": "SIMPLE", "sni": "api.example", "insecureSkipVerify": True},
            None,
            "api.example",
            {},
        ),
    ],
)
def test_tls_origination_verifies_the_server_as_istiod(
    settings: EnvoyJson, validation: EnvoyJson | None, sni: str | None, auto: EnvoyJson
) -> None:
    client = ClientTLSSettings.model_validate(settings)
    socket = tls.translate_client_tls(client, "outbound_.443_._.api.example", [])
    assert socket is not None
    body = socket["typed_config"]
    assert isinstance(body, dict) and isinstance(body["common_tls_context"], dict)
    assert body["common_tls_context"].get("validation_context") == validation
    assert body.get("sni") == sni
    assert tls.auto_sni_options(client) == auto


WILDCARDS = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: wildcards, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  rules:
  - from:
    - source: {namespaces: ["prod*"]}
  - from:
    - source: {serviceAccounts: ["bookinfo-productpage"]}
    to:
    - operation: {methods: ["P*"], hosts: ["*"]}
  - when:
    - {key: "request.headers[x-token]", values: ["*"]}
"""


@pytest.mark.parametrize(
    ("principal", "method", "headers", "allowed"),
    [
        # namespaces: "prod*" is a wildcard (it used to be the regex "pro" + "d*")
        ("spiffe://cluster.local/ns/prod-eu/sa/x", "GET", {}, True),
        ("spiffe://cluster.local/ns/pro/sa/x", "GET", {}, False),
        # serviceAccounts in the policy's namespace, any trust domain; methods "P*"
        ("spiffe://other.domain/ns/default/sa/bookinfo-productpage", "POST", {}, True),
        ("spiffe://cluster.local/ns/default/sa/bookinfo-productpage", "GET", {}, False),
        ("spiffe://cluster.local/ns/default/sa/bookinfo-productpage-2", "PUT", {}, False),
        # a header value "*" is a presence test, even for an empty value
        ("spiffe://cluster.local/ns/dev/sa/x", "GET", {"x-token": ""}, True),
        ("spiffe://cluster.local/ns/dev/sa/x", "GET", {}, False),
    ],
)
def test_authorization_wildcards_follow_istiod(
    principal: str, method: str, headers: dict[str, str], allowed: bool
) -> None:
    mesh = bookinfo(extra=WILDCARDS)
    request = Request(
        "details:9080",
        "/details/0",
        method=method,
        headers=headers,
        port=inbound_port(mesh, "details-v1-0"),
        source_principal=principal,
    )
    result = simulate(snapshot(mesh, "details-v1-0"), request)
    assert (result.status != 403) is allowed, result
