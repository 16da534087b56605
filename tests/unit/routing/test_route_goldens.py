"""Golden tests of the route writer (:mod:`canarymesh.routing`): each case of
``tests/golden/routes/`` must give exactly its managed object, and the weights read back from it
must be the ones written. The runtimes' routers are held to the same files in
``tests/unit/kube/test_router_goldens.py`` and ``tests/unit/runtime/test_local_router.py``.
A mismatch prints a unified diff; ``CANARYMESH_REFRESH_GOLDEN=1 pytest`` rewrites the expected
files (review the diff).
"""

from __future__ import annotations

import pytest

from canarymesh.errors import ConfigError
from canarymesh.routing.http_route import http_route_weights
from canarymesh.routing.virtual_service import virtual_service_weights
from tests.unit.routing.golden import (
    CASES,
    canary_of,
    cases_of,
    check,
    dump,
    load_case,
    name_of,
    weights_of,
    written,
)


def test_the_corpus_covers_the_shapes() -> None:
    kinds = {load_case(c)["object"]["kind"] for c in CASES}
    assert kinds == {"VirtualService", "HTTPRoute"}
    assert {"vs-delegate", "vs-several-routes", "vs-gateway-uri-match"} <= set(CASES)
    assert len(CASES) >= 10


@pytest.mark.parametrize("case", CASES)
def test_managed_object_matches_golden(case: str) -> None:
    check(case, written(load_case(case)), "writer")


@pytest.mark.parametrize("case", [c for c in CASES if load_case(c)["op"] == "apply"])
def test_weights_read_back_from_the_managed_object(case: str) -> None:
    """What the writer wrote reads back as the weights it was given."""
    data = load_case(case)
    managed = written(data)
    read = virtual_service_weights if managed["kind"] == "VirtualService" else http_route_weights
    assert read(managed, canary_of(data), name_of(data)) == weights_of(data)


def test_the_writer_is_pure_and_leaves_its_input_alone() -> None:
    data = load_case("vs-several-routes")
    before = dump(data["object"])
    first, second = dump(written(data)), dump(written(data))
    assert first == second
    assert dump(data["object"]) == before


def test_only_the_managed_list_changes() -> None:
    data = load_case("vs-several-routes")
    managed = written(data)
    assert {k: v for k, v in managed.items() if k != "spec"} == {
        k: v for k, v in data["object"].items() if k != "spec"
    }
    assert {k: v for k, v in managed["spec"].items() if k != "http"} == {
        k: v for k, v in data["object"]["spec"].items() if k != "http"
    }


def test_the_added_routes_keep_the_managed_routes_own_match() -> None:
    """A gateway route for /productpage stays one: the A/B and affinity routes AND their
    conditions with the managed route's, instead of catching every path of the gateway."""
    data = load_case("vs-gateway-uri-match")
    http = written(data)["spec"]["http"]
    theirs = data["object"]["spec"]["http"][0]["match"]
    added = [r for r in http if str(r.get("name", "")).startswith("canarymesh-")]
    names = ["canarymesh-productpage-affinity", "canarymesh-productpage-match"]
    assert [r["name"] for r in added] == names
    for route in added:
        assert len(route["match"]) == len(theirs)
        for mine, their in zip(route["match"], theirs, strict=True):
            assert {k: v for k, v in mine.items() if k != "headers"} == {
                k: v for k, v in their.items() if k != "headers"
            }


def test_a_route_object_without_a_route_to_the_host_is_refused() -> None:
    data = load_case("vs-mirror")
    data["object"]["spec"]["http"][0]["route"][0]["destination"]["host"] = "ratings"
    with pytest.raises(
        ConfigError,
        match="VirtualService webapps/reviews: no route sends traffic only to 'reviews'",
    ):
        written(data)


def test_a_named_route_that_does_not_exist_is_refused() -> None:
    data = load_case("vs-several-routes")
    data["canary"]["target"]["routes"] = ["primary", "secondary"]
    with pytest.raises(ConfigError, match=r"routes that do not exist: \['secondary'\]"):
        written(data)


def test_session_affinity_on_an_httproute_is_refused() -> None:
    data = load_case("httproute-weights")
    data["canary"]["strategy"]["sessionAffinity"] = {"cookieName": "c"}
    with pytest.raises(ConfigError, match="sessionAffinity needs an Istio VirtualService"):
        written(data)


def test_a_uri_match_has_no_httproute_form() -> None:
    data = load_case("httproute-weights")
    data["canary"]["strategy"]["canary"]["match"] = [{"uri": {"prefix": "/beta"}}]
    with pytest.raises(ConfigError, match=r"match fields \['uri'\] have no HTTPRoute form"):
        written(data)


@pytest.mark.parametrize("case", cases_of("VirtualService"))
def test_managed_virtual_services_validate_against_istio_crds(case: str) -> None:
    from tests.unit.test_manifests import validate_istio

    validate_istio(written(load_case(case)))
