"""The service view model against canned range answers: per-version series, latest values, split."""

from __future__ import annotations

import pytest

from canarymesh.views.service import SERIES, service_view
from tests.unit.views.promdata import matrix, vector

V1 = {"destination_version": "v1"}
V2 = {"destination_version": "v2"}


def results(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "version-request-rate": matrix([(V1, [9, 9, 6]), (V2, [1, 1, 2])]),
        "version-success-rate": matrix([(V1, [1, 1, 1]), (V2, [1, "0.5", "NaN"])]),
        "version-p50": matrix([(V1, [5, 5, 5]), (V2, [7, 8, 9])]),
        "version-p90": matrix([(V1, [9, 9, 9]), (V2, [20, 21, 22])]),
        "version-p99": matrix([(V1, [20, 20, 20]), (V2, [40, "+Inf", 44])]),
    }
    return {**base, **overrides}


def test_rows_per_version_with_latest_values_and_traffic_split() -> None:
    view = service_view("reviews.default.svc.cluster.local", "1m", results())  # type: ignore[arg-type]
    assert [r.version for r in view.versions] == ["v1", "v2"]
    v1, v2 = view.versions
    assert view.total_rps == 8.0
    assert (v1.share_pct, v2.share_pct) == (75.0, 25.0)
    assert v1.latest == {"rps": 6.0, "success": 100.0, "p50": 5.0, "p90": 9.0, "p99": 20.0}
    # The latest *known* value: NaN and infinities are gaps, not numbers.
    assert v2.latest["success"] == 50.0
    assert [p[1] for p in v2.p99] == [40.0, None, 44.0]
    assert len(v1.rps) == 3 and v1.rps[1][0] - v1.rps[0][0] == 15.0


def test_no_traffic_gives_no_rows_and_a_missing_query_is_named() -> None:
    empty = {name: matrix([]) for name in SERIES}
    view = service_view("details.default.svc.cluster.local", "5m", empty)  # type: ignore[arg-type]
    assert (view.versions, view.total_rps) == ((), None)
    partial = results()
    del partial["version-p90"]
    with pytest.raises(KeyError, match="version-p90"):
        service_view("x", "1m", partial)  # type: ignore[arg-type]


def test_an_instant_answer_where_a_range_is_due_is_refused() -> None:
    with pytest.raises(Exception, match="expected a Prometheus matrix"):
        service_view("x", "1m", results(**{"version-p50": vector([])}))  # type: ignore[arg-type]
