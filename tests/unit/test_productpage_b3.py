"""The B3 re-encoding rules of productpage (bookinfo-spec §4.1 item 1), as a pure function."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from bookinfo.productpage.b3 import outgoing_b3

TRACE_128 = "80f198ee56343ba864fe8b2a57d3eff7"
TRACE_64 = "463ac35c9f6413ad"
SPAN = "e457b5a2e4d86bd1"


def b3(**headers: str) -> dict[str, str]:
    return outgoing_b3(CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()}))


def test_multi_headers_pass_with_sampled() -> None:
    assert b3(x_b3_traceid=TRACE_128, x_b3_spanid=SPAN, x_b3_sampled="1") == {
        "x-b3-traceid": TRACE_128,
        "x-b3-spanid": SPAN,
        "x-b3-sampled": "1",
    }


def test_64_bit_trace_id_is_left_padded() -> None:
    out = b3(x_b3_traceid=TRACE_64, x_b3_spanid=SPAN)
    assert out["x-b3-traceid"] == "0000000000000000463ac35c9f6413ad"


def test_ids_are_lower_cased_and_the_span_is_unchanged() -> None:
    out = b3(x_b3_traceid=TRACE_128.upper(), x_b3_spanid=SPAN.upper())
    assert out["x-b3-traceid"] == TRACE_128
    assert out["x-b3-spanid"] == SPAN


def test_parent_span_and_flags_are_never_sent() -> None:
    out = b3(
        x_b3_traceid=TRACE_128,
        x_b3_spanid=SPAN,
        x_b3_parentspanid="05e3ac9a4f6e3b90",
        x_b3_flags="1",
    )
    assert set(out) == {"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}


def test_header_names_are_case_insensitive() -> None:
    out = outgoing_b3(CIMultiDict({"X-B3-TraceId": TRACE_128, "X-B3-SpanId": SPAN}))
    assert out["x-b3-traceid"] == TRACE_128


@pytest.mark.parametrize(
    ("sampled", "flags", "expected"),
    [
        (None, None, "0"),
        ("1", None, "1"),
        ("true", None, "1"),
        ("True", None, "1"),
        ("d", None, "1"),
        ("0", None, "0"),
        ("false", None, "0"),
        ("yes", None, "0"),
        ("0", "1", "1"),
        (None, "1", "1"),
        (None, "0", "0"),
    ],
)
def test_sampled_rules(sampled: str | None, flags: str | None, expected: str) -> None:
    headers = {"x-b3-traceid": TRACE_128, "x-b3-spanid": SPAN}
    if sampled is not None:
        headers["x-b3-sampled"] = sampled
    if flags is not None:
        headers["x-b3-flags"] = flags
    assert outgoing_b3(CIMultiDict(headers))["x-b3-sampled"] == expected


@pytest.mark.parametrize(
    ("single", "expected"),
    [
        (f"{TRACE_128}-{SPAN}", (TRACE_128, SPAN, "1")),  # no sampling field: deferred → 1
        (f"{TRACE_128}-{SPAN}-1", (TRACE_128, SPAN, "1")),
        (f"{TRACE_128}-{SPAN}-0", (TRACE_128, SPAN, "0")),
        (f"{TRACE_128}-{SPAN}-d-05e3ac9a4f6e3b90", (TRACE_128, SPAN, "1")),
        (f"{TRACE_64}-{SPAN}-0-05e3ac9a4f6e3b90", ("0" * 16 + TRACE_64, SPAN, "0")),
    ],
)
def test_single_header_is_converted(single: str, expected: tuple[str, str, str]) -> None:
    out = b3(b3=single)
    assert (out["x-b3-traceid"], out["x-b3-spanid"], out["x-b3-sampled"]) == expected


def test_single_header_wins_over_multi_headers() -> None:
    out = b3(
        b3=f"{TRACE_128}-{SPAN}-0", x_b3_traceid=TRACE_64, x_b3_spanid="1" * 16, x_b3_flags="1"
    )
    assert out == {"x-b3-traceid": TRACE_128, "x-b3-spanid": SPAN, "x-b3-sampled": "0"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-b3-traceid": TRACE_128},
        {"x-b3-spanid": SPAN, "x-b3-sampled": "1"},
        {"x-b3-traceid": TRACE_128[:-1], "x-b3-spanid": SPAN},  # 31 digits
        {"x-b3-traceid": TRACE_128 + "0", "x-b3-spanid": SPAN},  # 33 digits
        {"x-b3-traceid": "g" * 16, "x-b3-spanid": SPAN},
        {"x-b3-traceid": TRACE_128, "x-b3-spanid": SPAN[:8]},
        {"x-b3-traceid": TRACE_128, "x-b3-spanid": TRACE_128},
        {"x-b3-traceid": "0" * 32, "x-b3-spanid": SPAN},
        {"x-b3-traceid": TRACE_128, "x-b3-spanid": "0" * 16},
        {"b3": "1"},
        {"b3": "d"},
        {"b3": f"{TRACE_128}-{SPAN}-1-05e3ac9a4f6e3b90-extra"},
        {"b3": f"{TRACE_128}"},
        {"b3": "-"},
    ],
)
def test_no_valid_pair_means_no_b3_at_all(headers: dict[str, str]) -> None:
    assert outgoing_b3(CIMultiDict(headers)) == {}
