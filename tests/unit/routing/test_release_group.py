"""The release group writer (:mod:`canarymesh.routing.release_group`): each golden case gives
exactly its VirtualServices in its apply order, the weights read back, rewriting is idempotent
and any sequence of steps leaves what the last step alone would (so a rollback leaves the user's
routes as they were), and the inputs are never changed."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.managed import Obj
from canarymesh.routing.release_group import (
    GROUP_HEADER,
    group_objects,
    group_weights,
    session_route_name,
)
from tests.unit.routing.group_golden import (
    CASES,
    canary_of,
    check,
    dump,
    load_case,
    members_of,
    weights_of,
    written,
)


def test_the_corpus_covers_the_shapes() -> None:
    assert {"slice-0", "slice-20", "slice-100", "promoted", "named-routes-50"} <= set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_the_group_objects_match_golden(case: str) -> None:
    check(case, written(load_case(case)), "writer")


@pytest.mark.parametrize("case", CASES)
def test_the_weights_read_back(case: str) -> None:
    data = load_case(case)
    objects = written(data)
    by_name = {o["metadata"]["name"]: o for o in objects}
    ingress = by_name[data["objects"][0]["metadata"]["name"]]
    members = [(m, by_name[vs["metadata"]["name"]]) for m, vs in members_of(data)]
    assert group_weights(ingress, members, canary_of(data), data["name"]) == weights_of(data)


def _rewrite(data: dict[str, Any], objects: list[dict[str, Any]], w: Weights) -> list[Obj]:
    by_name = {o["metadata"]["name"]: o for o in objects}
    ingress = by_name[data["objects"][0]["metadata"]["name"]]
    members = [(m, by_name[vs["metadata"]["name"]]) for m, vs in members_of(data)]
    return group_objects(ingress, members, canary_of(data), str(data["name"]), w)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=5), st.booleans())
def test_any_sequence_of_steps_leaves_what_the_last_step_alone_would(
    percents: list[int], promote: bool
) -> None:
    data = load_case("slice-0")
    last = Weights(0, "canary") if promote else Weights(percents[-1], "stable")
    objects = copy.deepcopy(data["objects"])
    for percent in percents:
        objects = _rewrite(data, objects, Weights(percent, "stable"))
    objects = _rewrite(data, objects, last)
    direct = _rewrite(data, copy.deepcopy(data["objects"]), last)
    assert dump(sorted(objects, key=_name)) == dump(sorted(direct, key=_name))


def _name(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def test_a_rollback_gives_back_the_users_routes() -> None:
    data = load_case("slice-20")
    opened = written(data)
    closed = _rewrite(data, opened, Weights(0, "stable"))
    assert dump(closed) == dump(written(load_case("slice-0")))
    ingress = [o for o in closed if o["metadata"]["name"] == "bookinfo"][0]
    assert ingress == data["objects"][0]  # exactly as the user wrote it


def test_members_go_first_while_the_slice_opens_and_last_while_it_closes() -> None:
    data = load_case("slice-20")
    assert [o["metadata"]["name"] for o in written(data)] == ["reviews", "ratings", "bookinfo"]
    closing = _rewrite(data, written(data), Weights(0, "stable"))
    assert [o["metadata"]["name"] for o in closing] == ["bookinfo", "reviews", "ratings"]


def test_the_slice_sets_the_header_and_the_rest_cannot_bring_it() -> None:
    ingress = written(load_case("slice-20"))[-1]
    session, split = ingress["spec"]["http"][:2]
    assert session["name"] == session_route_name("reviews-ratings")
    stable, in_slice = split["route"]
    assert stable["headers"] == {"request": {"remove": [GROUP_HEADER]}}
    assert in_slice["headers"]["request"] == {"set": {GROUP_HEADER: "reviews-ratings"}}
    cookie = in_slice["headers"]["response"]["add"]["Set-Cookie"]
    assert cookie.startswith("canarymesh-group-reviews-ratings=reviews.v3_ratings.v2; Max-Age=")
    # The session route keeps the managed route's own URI matches, each ANDed with the cookie.
    assert [m["uri"] for m in session["match"]] == [
        {"exact": "/productpage"},
        {"prefix": "/static"},
    ]
    assert all("cookie" in m["headers"] for m in session["match"])


def test_the_writer_leaves_its_input_alone() -> None:
    data = load_case("slice-20")
    before = dump(data["objects"])
    assert dump(written(data)) == dump(written(data))
    assert dump(data["objects"]) == before


def test_a_member_virtual_service_without_its_host_is_a_config_error() -> None:
    data = load_case("slice-20")
    data["objects"][2]["spec"]["http"][0]["route"][0]["destination"]["host"] = "details"
    with pytest.raises(ConfigError, match="no route sends traffic only to 'ratings'"):
        written(data)


@pytest.mark.parametrize("case", CASES)
def test_the_group_virtual_services_validate_against_istio_crds(case: str) -> None:
    from tests.unit.test_manifests import validate_istio

    for obj in written(load_case(case)):
        validate_istio(obj)


@pytest.mark.parametrize("case", CASES)
def test_the_group_virtual_services_load_clean_in_our_validator(case: str) -> None:
    from canarymesh.api.loader import load_text

    text = yaml.safe_dump_all(written(load_case(case)))
    loaded = load_text(text, f"{case}.yaml")
    assert [str(d) for d in loaded.diagnostics if d.level == "error"] == []


def test_an_ingress_route_that_splits_on_its_own_is_refused_naming_it() -> None:
    data = load_case("slice-0")
    route = data["objects"][0]["spec"]["http"][0]
    route["route"] = [
        {"destination": {"host": "productpage", "subset": "v1"}, "weight": 90},
        {"destination": {"host": "productpage", "subset": "v2"}, "weight": 10},
    ]
    data["weights"] = {"canary": 20, "stableSubset": "stable"}
    with pytest.raises(ConfigError, match=r"VirtualService default/bookinfo \(spec.target\): "
                       "the ingress route .* splits between 2 destinations"):  # fmt: skip
        written(data)
