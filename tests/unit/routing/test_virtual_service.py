"""Weights written into a user's VirtualService: only the managed routes change, our own routes
come and go, and what is written reads back equal. (Written for the local mesh's writer, which
the cluster's replaced: route names, cookie value and the order of the added routes are the
ones both runtimes now share, see docs/cluster.md.)"""

from __future__ import annotations

from typing import Any

import pytest

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError
from canarymesh.rollout.actions import Weights
from canarymesh.routing.virtual_service import (
    finalized_virtual_service,
    managed_virtual_service,
    virtual_service_weights,
)

SPEC = Canary.model_validate(
    {
        "target": {"host": "reviews", "virtualService": "reviews", "stableSubset": "v1",
                   "canarySubset": "v3"},
        "strategy": {"canary": {"match": [{"headers": {"end-user": {"exact": "jason"}}}]},
                     "sessionAffinity": {"cookieName": "canary", "maxAge": "1h"}},
    }
)  # fmt: skip
VS: dict[str, Any] = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "reviews", "namespace": "default"},
    "spec": {
        "hosts": ["reviews"],
        "http": [
            {"name": "other", "match": [{"uri": {"prefix": "/x"}}],
             "route": [{"destination": {"host": "details"}}]},
            {"timeout": "3s", "route": [{"destination": {"host": "reviews", "subset": "v1"}}]},
        ],
    },
}  # fmt: skip


def test_weights_match_and_affinity_are_written_and_read_back() -> None:
    weights = Weights(30, "v1", mirror=0.0, match=True)
    out = managed_virtual_service(VS, SPEC, "reviews", weights)
    http = out["spec"]["http"]
    assert [r.get("name") for r in http] == [
        "other", "canarymesh-reviews-affinity", "canarymesh-reviews-match", None,
    ]  # fmt: skip
    assert http[0] == VS["spec"]["http"][0]  # not ours: untouched
    assert http[2]["match"] == [{"headers": {"end-user": {"exact": "jason"}}}]
    assert http[3]["timeout"] == "3s"
    assert [d["weight"] for d in http[3]["route"]] == [70, 30]
    cookie = http[3]["route"][1]["headers"]["response"]["add"]["Set-Cookie"]
    assert cookie == "canary=v3; Max-Age=3600"
    assert http[1]["route"][0]["headers"]["response"]["add"]["Set-Cookie"] == cookie  # refreshed
    assert virtual_service_weights(out, SPEC, "reviews") == weights
    again = managed_virtual_service(out, SPEC, "reviews", Weights(0, "v1"))
    assert [r.get("name") for r in again["spec"]["http"]] == ["other", None]


def test_mirror_and_finalize() -> None:
    out = managed_virtual_service(VS, SPEC, "reviews", Weights(0, "v1", mirror=50.0))
    route = out["spec"]["http"][-1]
    assert route["mirror"] == {"host": "reviews", "subset": "v3"}
    assert route["mirrorPercentage"] == {"value": 50.0}
    done = finalized_virtual_service(out, SPEC, "reviews", "v3")
    assert done["spec"]["http"][-1]["route"] == [
        {"destination": {"host": "reviews", "subset": "v3"}, "weight": 100}
    ]
    assert "mirror" not in done["spec"]["http"][-1]
    assert virtual_service_weights(done, SPEC, "reviews") == Weights(0, "v3")


def test_weights_of_a_promoted_canary_are_the_finalized_routes() -> None:
    promoted = managed_virtual_service(VS, SPEC, "reviews", Weights(0, "v3"))
    assert promoted == finalized_virtual_service(VS, SPEC, "reviews", "v3")


def test_a_virtual_service_without_the_host_is_refused() -> None:
    vs = {**VS, "spec": {"hosts": ["reviews"], "http": [VS["spec"]["http"][0]]}}
    with pytest.raises(ConfigError, match="no route sends traffic only to 'reviews'"):
        managed_virtual_service(vs, SPEC, "reviews", Weights(10, "v1"))
