"""The span collector over real HTTP on 127.0.0.1: Zipkin v2 in, Zipkin's query API out."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from canarymesh.runtime.local.tracing import SpanStore, TracingCollector


def span(
    trace: str, span_id: str, service: str, name: str, duration: int, **tags: str
) -> dict[str, object]:
    return {
        "traceId": trace,
        "id": span_id,
        "name": name,
        "timestamp": 1_000_000,
        "duration": duration,
        "localEndpoint": {"serviceName": service},
        "tags": tags,
    }


async def _round_trip() -> dict[str, object]:
    collector = TracingCollector(SpanStore(max_traces=2))
    port = await collector.start()
    base = f"http://127.0.0.1:{port}"
    out: dict[str, object] = {}
    try:
        async with aiohttp.ClientSession(trust_env=False) as http:
            spans = [
                span("1" * 32, "a", "productpage-v1", "details:9080", 900),
                span("2" * 32, "b", "reviews-v2", "ratings:9080", 40_000, error="true"),
                span("3" * 16, "c", "details-v1", "details:9080", 100),
            ]
            async with http.post(f"{base}/api/v2/spans", data=json.dumps(spans)) as r:
                out["post"] = r.status
            async with http.post(f"{base}/api/v2/spans", data=b"{not json") as r:
                out["bad"] = r.status
            for key, path in {
                "services": "/api/v2/services",
                "slow": "/api/v2/traces?minDuration=10000",
                "errors": "/api/v2/traces?error=true",
                "details": "/api/v2/traces?serviceName=details-v1&spanName=details:9080",
                "short_id": "/api/v2/trace/" + "3" * 16,
            }.items():
                async with http.get(base + path) as r:
                    out[key] = await r.json()
            async with http.get(f"{base}/api/v2/trace/{'1' * 32}") as r:
                out["evicted"] = r.status
            async with http.get(f"{base}/api/v2/traces?limit=x") as r:
                out["bad_limit"] = r.status
    finally:
        await collector.stop()
    return out


def test_collector_stores_searches_and_evicts_the_oldest_trace() -> None:
    out = asyncio.run(_round_trip())
    assert (out["post"], out["bad"], out["bad_limit"]) == (202, 400, 400)
    # max_traces=2: the first trace made room for the third.
    assert out["evicted"] == 404
    assert out["services"] == ["details-v1", "reviews-v2"]
    slow = out["slow"]
    assert isinstance(slow, list) and [t[0]["id"] for t in slow] == ["b"]
    errors = out["errors"]
    assert isinstance(errors, list) and [t[0]["id"] for t in errors] == ["b"]
    details = out["details"]
    assert isinstance(details, list) and [t[0]["id"] for t in details] == ["c"]
    # A 64-bit trace id is the same trace as its zero-padded 128-bit form.
    short = out["short_id"]
    assert isinstance(short, list) and short[0]["traceId"] == "0" * 16 + "3" * 16
