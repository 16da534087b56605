"""B3 trace-context propagation as Istio's productpage does it (spec §4.1, §8 item 8). Pure.

The original extracts with OpenTelemetry's ``B3MultiFormat`` and injects the same context into
every backend call without starting a span. The observable rules, which :func:`outgoing_b3`
reproduces without depending on OpenTelemetry:

* a single ``b3`` header, when present, wins over the ``x-b3-*`` headers and is converted to them;
* only ``x-b3-traceid``, ``x-b3-spanid`` and ``x-b3-sampled`` go out (never ``x-b3-parentspanid``
  or ``x-b3-flags``), the span id unchanged;
* a 64-bit trace id is left-padded to 32 hex digits, and ids are written in lower case;
* sampled is ``1`` for ``1``/``true``/``True``/``d`` or ``x-b3-flags: 1``, else ``0`` (also when
  absent); a single ``b3`` header without a sampling field means "deferred", which becomes ``1``;
* without a valid trace id and span id pair nothing at all is sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TRACE_ID = re.compile(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
_SAMPLED_VALUES = frozenset({"1", "True", "true", "d"})


def outgoing_b3(incoming: Mapping[str, str]) -> dict[str, str]:
    """The B3 headers to send downstream, given the incoming headers (case-insensitive mapping)."""
    single = incoming.get("b3", "")
    flags = ""
    if single:
        trace_id, span_id, sampled = _split_single(single)
    else:
        trace_id = incoming.get("x-b3-traceid", "")
        span_id = incoming.get("x-b3-spanid", "")
        sampled = incoming.get("x-b3-sampled", "") or "0"
        flags = incoming.get("x-b3-flags", "")
    if not (_TRACE_ID.fullmatch(trace_id) and _SPAN_ID.fullmatch(span_id)):
        return {}
    trace_value, span_value = int(trace_id, 16), int(span_id, 16)
    # An all-zero id is the "invalid" id of B3 and W3C alike; OpenTelemetry would not inject it.
    if trace_value == 0 or span_value == 0:
        return {}
    return {
        "x-b3-traceid": f"{trace_value:032x}",
        "x-b3-spanid": f"{span_value:016x}",
        "x-b3-sampled": "1" if sampled in _SAMPLED_VALUES or flags == "1" else "0",
    }


def _split_single(value: str) -> tuple[str, str, str]:
    """``{traceid}-{spanid}[-{sampled}[-{parentspanid}]]`` → (trace id, span id, sampled)."""
    fields = value.split("-")
    if len(fields) == 2:
        return fields[0], fields[1], "1"
    if len(fields) in (3, 4):
        return fields[0], fields[1], fields[2]
    # A lone sampling flag ("0", "1", "d") or a malformed header carries no ids to propagate.
    return "", "", ""
