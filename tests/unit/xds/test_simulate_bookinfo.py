"""Bookinfo intents, proved by simulating requests over the generated Envoy config."""

from __future__ import annotations

from canarymesh.mesh.model import MeshSnapshot
from canarymesh.xds.simulate import Request, Result, simulate
from tests.unit.xds.meshes import bookinfo, inbound_port, snapshot

REVIEWS = "reviews.default.svc.cluster.local"
RATINGS = "ratings.default.svc.cluster.local"
PRODUCTPAGE_SA = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"
RATINGS_SA = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"
DR_ALL = "networking/destination-rule-all.yaml"


def reviews_call(user: str | None = None, host: str = "reviews:9080") -> Request:
    headers = {"end-user": user} if user else {}
    return Request(host=host, path="/reviews/0", headers=headers)


def test_without_virtual_service_reviews_spreads_over_all_versions() -> None:
    snap = snapshot(bookinfo(), "productpage-v1-0")
    result = simulate(snap, reviews_call())
    assert result.error is None
    assert result.cluster == f"outbound|9080||{REVIEWS}"
    endpoints = snap.named("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment")
    lb = endpoints[f"outbound|9080||{REVIEWS}"]["endpoints"][0]["lb_endpoints"]  # type: ignore[index]
    assert len(lb) == 3  # v1, v2 and v3 replicas


def test_jason_is_routed_to_reviews_v2_and_everyone_else_to_v1() -> None:
    mesh = bookinfo(DR_ALL, "networking/virtual-service-reviews-test-v2.yaml")
    snap = snapshot(mesh, "productpage-v1-0")
    assert simulate(snap, reviews_call("jason")).cluster == f"outbound|9080|v2|{REVIEWS}"
    assert simulate(snap, reviews_call()).cluster == f"outbound|9080|v1|{REVIEWS}"
    assert simulate(snap, reviews_call("bob")).cluster == f"outbound|9080|v1|{REVIEWS}"
    assert simulate(snap, reviews_call("Jason")).cluster == f"outbound|9080|v1|{REVIEWS}"


def test_every_spelling_of_the_reviews_host_reaches_the_same_route() -> None:
    snap = snapshot(
        bookinfo(DR_ALL, "networking/virtual-service-reviews-v3.yaml"), "productpage-v1-0"
    )
    for host in ("reviews", "reviews:9080", "reviews.default", f"{REVIEWS}:9080", REVIEWS):
        assert simulate(snap, reviews_call(host=host)).cluster == f"outbound|9080|v3|{REVIEWS}"


def test_fifty_fifty_split_between_v1_and_v3() -> None:
    snap = snapshot(
        bookinfo(DR_ALL, "networking/virtual-service-reviews-50-v3.yaml"), "productpage-v1-0"
    )
    result = simulate(snap, reviews_call())
    assert result.clusters == (
        (f"outbound|9080|v1|{REVIEWS}", 50),
        (f"outbound|9080|v3|{REVIEWS}", 50),
    )


def test_ninety_ten_split_keeps_the_weights() -> None:
    snap = snapshot(
        bookinfo(DR_ALL, "networking/virtual-service-reviews-90-10.yaml"), "productpage-v1-0"
    )
    assert dict(simulate(snap, reviews_call()).clusters) == {
        f"outbound|9080|v1|{REVIEWS}": 90,
        f"outbound|9080|v2|{REVIEWS}": 10,
    }


def test_ratings_delay_of_seven_seconds_hits_jason_only() -> None:
    mesh = bookinfo(DR_ALL, "networking/virtual-service-ratings-test-delay.yaml")
    snap = snapshot(mesh, "reviews-v2-0")
    jason = simulate(snap, Request("ratings:9080", "/ratings/0", headers={"end-user": "jason"}))
    assert jason.fault is not None
    assert (jason.fault.delay, jason.fault.delay_percent) == ("7s", 100.0)
    assert jason.cluster == f"outbound|9080|v1|{RATINGS}"
    anonymous = simulate(snap, Request("ratings:9080", "/ratings/0"))
    assert anonymous.fault is None
    assert anonymous.cluster == f"outbound|9080|v1|{RATINGS}"


def test_ratings_abort_answers_500_for_jason_only() -> None:
    mesh = bookinfo(DR_ALL, "networking/virtual-service-ratings-test-abort.yaml")
    snap = snapshot(mesh, "reviews-v3-0")
    jason = simulate(snap, Request("ratings:9080", "/ratings/0", headers={"end-user": "jason"}))
    assert jason.fault is not None
    assert (jason.fault.abort_status, jason.fault.abort_percent) == (500, 100.0)
    assert simulate(snap, Request("ratings:9080", "/ratings/0")).fault is None


def test_details_fault_file_aborts_every_call_with_555() -> None:
    snap = snapshot(bookinfo("networking/fault-injection-details-v1.yaml"), "productpage-v1-0")
    result = simulate(snap, Request("details:9080", "/details/0"))
    assert result.fault is not None and result.fault.abort_status == 555
    assert result.cluster == "outbound|9080|v1|details.default.svc.cluster.local"


def test_gateway_routes_the_five_bookinfo_paths_and_404s_the_rest() -> None:
    mesh = bookinfo("networking/bookinfo-gateway.yaml")
    snap = snapshot(mesh, "istio-ingressgateway")
    productpage = "outbound|9080||productpage.default.svc.cluster.local"
    for path in ("/productpage", "/static/img/izzy.png", "/login", "/logout", "/api/v1/products/0"):
        result = simulate(snap, Request("localhost", path))
        assert result.cluster == productpage, path
    for path in ("/", "/health", "/productpagex"):
        assert simulate(snap, Request("localhost", path)).error == "NoRoute", path


def test_hosts_outside_the_mesh_pass_through() -> None:
    snap = snapshot(bookinfo(), "details-v1-0")
    result = simulate(snap, Request("www.example.org", "/"))
    assert result.cluster == "PassthroughCluster"


def test_browser_cookie_with_spaces_still_matches_the_cookie_regex() -> None:
    extra = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - match:
    - headers:
        cookie:
          regex: "^(.*?;)?(user=jason)(;.*)?$"
    route:
    - destination: {host: reviews, subset: v2}
  - route:
    - destination: {host: reviews, subset: v1}
"""
    snap = snapshot(bookinfo(DR_ALL, extra=extra), "productpage-v1-0")

    def routed(cookie: str) -> str | None:
        return simulate(snap, Request("reviews:9080", "/", headers={"cookie": cookie})).cluster

    assert routed("a=1; user=jason; b=2") == f"outbound|9080|v2|{REVIEWS}"
    assert routed("user=jason") == f"outbound|9080|v2|{REVIEWS}"
    assert routed("a=1;user=jasonx") == f"outbound|9080|v1|{REVIEWS}"


def test_a_subset_missing_from_the_destination_rule_goes_nowhere() -> None:
    snap = snapshot(bookinfo("networking/virtual-service-reviews-v3.yaml"), "productpage-v1-0")
    assert simulate(snap, reviews_call()).cluster == "BlackHoleCluster"


AUTHZ = {
    "allow-nothing": """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: default}
spec: {}
""",
    "productpage-viewer": """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: productpage-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: productpage}}
  action: ALLOW
  rules:
  - to:
    - operation: {methods: ["GET"]}
""",
    "details-viewer": """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: details-viewer, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}
    to:
    - operation: {methods: ["GET"]}
""",
}


def authz_mesh(*names: str) -> MeshSnapshot:
    return bookinfo(extra="\n---\n".join(AUTHZ[n] for n in names))


def inbound(
    mesh: MeshSnapshot, proxy: str, method: str = "GET", principal: str | None = PRODUCTPAGE_SA
) -> Result:
    request = Request(
        "productpage:9080",
        "/productpage",
        method=method,
        port=inbound_port(mesh, proxy),
        source_principal=principal,
    )
    return simulate(snapshot(mesh, proxy), request)


def test_without_policy_everything_is_allowed() -> None:
    result = inbound(bookinfo(), "productpage-v1-0")
    assert result.error is None and result.cluster == "inbound|9080||"


def test_allow_nothing_denies_every_request_with_403() -> None:
    result = inbound(authz_mesh("allow-nothing"), "productpage-v1-0")
    assert (result.status, result.error) == (403, "RBAC: access denied")


def test_productpage_viewer_allows_get_and_denies_post() -> None:
    mesh = authz_mesh("allow-nothing", "productpage-viewer")
    get = inbound(mesh, "productpage-v1-0", "GET", principal=None)
    assert get.error is None
    assert (
        get.rbac is not None and get.rbac.policy == "ns[default]-policy[productpage-viewer]-rule[0]"
    )
    assert inbound(mesh, "productpage-v1-0", "POST", principal=None).status == 403
    # details is still closed by allow-nothing
    assert inbound(mesh, "details-v1-0", "GET").status == 403


def test_details_viewer_admits_productpage_but_not_ratings() -> None:
    mesh = authz_mesh("allow-nothing", "productpage-viewer", "details-viewer")
    assert inbound(mesh, "details-v1-0", "GET", PRODUCTPAGE_SA).error is None
    assert inbound(mesh, "details-v1-0", "GET", RATINGS_SA).status == 403
    assert inbound(mesh, "details-v1-0", "GET", principal=None).status == 403
    assert inbound(mesh, "details-v1-0", "POST", PRODUCTPAGE_SA).status == 403


def test_deny_policy_wins_over_allow() -> None:
    deny = """
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-post, namespace: default}
spec:
  selector: {matchLabels: {app: details}}
  action: DENY
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]}
"""
    mesh = bookinfo(extra=AUTHZ["details-viewer"] + "\n---\n" + deny)
    result = inbound(mesh, "details-v1-0", "GET", PRODUCTPAGE_SA)
    assert result.status == 403
    assert result.rbac is not None
    assert result.rbac.policy == "ns[default]-policy[deny-post]-rule[0]"


STRICT = """
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
"""


def test_strict_mtls_resets_plaintext_and_accepts_mesh_certificates() -> None:
    mesh = bookinfo(extra=STRICT)
    assert inbound(mesh, "reviews-v1-0", principal=None).error == "ConnectionReset"
    assert inbound(mesh, "reviews-v1-0", principal=PRODUCTPAGE_SA).error is None


def test_permissive_by_default_accepts_both() -> None:
    mesh = bookinfo()
    assert inbound(mesh, "reviews-v1-0", principal=None).error is None
    assert inbound(mesh, "reviews-v1-0", principal=PRODUCTPAGE_SA).error is None
