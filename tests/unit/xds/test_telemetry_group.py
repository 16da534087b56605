"""The release group tag: the label ``canarymesh_group`` is the request's ``x-canarymesh-group``
(what Istio's Telemetry ``tagOverrides`` makes of it), empty without one, and never a value a
client could use to blow up the series (only Kubernetes names pass). Every access log asks
Envoy for the header: the xds golden files show it."""

from __future__ import annotations

import pytest

from canarymesh.runtime.local.telemetry_metrics import HTTP_LABELS, TCP_LABELS
from canarymesh.xds.telemetry import group_tag, labels_from_log_entry
from tests.unit.xds.test_telemetry import PRODUCTPAGE, entry


def test_the_label_is_the_group_header() -> None:
    logged = entry(200)
    logged["request"]["request_headers"]["x-canarymesh-group"] = "reviews-ratings"  # type: ignore[index]
    assert labels_from_log_entry(logged, "source", PRODUCTPAGE)["canarymesh_group"] == (
        "reviews-ratings"
    )
    assert labels_from_log_entry(entry(200), "source", PRODUCTPAGE)["canarymesh_group"] == ""


@pytest.mark.parametrize(
    "value", ["", "Reviews", "a b", "x" * 300, "-a", "a_b", "reviews-ratings\n"]
)
def test_anything_but_a_kubernetes_name_is_no_group(value: str) -> None:
    assert group_tag(value) == ""


def test_the_http_series_carry_the_label_and_the_tcp_ones_do_not() -> None:
    assert HTTP_LABELS[-1] == "canarymesh_group" and "canarymesh_group" not in TCP_LABELS
    assert set(labels_from_log_entry(entry(200), "destination", PRODUCTPAGE)) == set(HTTP_LABELS)
