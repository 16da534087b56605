"""Telemetry stays bounded whatever the streams claim: unknown workloads fold, series are capped."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from canarymesh.runtime.local.telemetry_metrics import HTTP_LABELS, IstioMetrics


def _labels(n: int) -> dict[str, str]:
    labels = {name: f"v{n}" for name in HTTP_LABELS}
    labels["reporter"] = "destination"
    return labels


def test_series_past_the_cap_count_in_one_overflow_series() -> None:
    metrics = IstioMetrics(CollectorRegistry(), max_series=50)
    for n in range(1000):
        metrics.http_series(_labels(n)).record(1.0, 10, 10)
    assert len(metrics._http) == 51  # the cap, plus the overflow series
    assert metrics.overflowed == 950
    unknown = {**dict.fromkeys(HTTP_LABELS, "unknown"), "reporter": "destination"}
    overflow = metrics.http_series(unknown)
    assert overflow.requests == 950
    # Earlier label sets keep counting where they were.
    assert metrics.http_series(_labels(3)).requests == 1


def test_the_rendered_metrics_stay_small_under_a_flood_of_label_values() -> None:
    registry = CollectorRegistry()
    metrics = IstioMetrics(registry, max_series=100)
    for n in range(5000):
        metrics.http_series(_labels(n)).record(1.0, 10, 10)
    size = len(generate_latest(registry))
    at_cap_registry = CollectorRegistry()
    at_cap = IstioMetrics(at_cap_registry, max_series=100)
    for n in range(100):
        at_cap.http_series(_labels(n)).record(1.0, 10, 10)
    # About one extra series' worth over exactly-at-the-cap, not fifty times more.
    assert size < 1.05 * len(generate_latest(at_cap_registry))


def test_a_claimed_workload_the_mesh_does_not_run_counts_as_unknown() -> None:
    from canarymesh.runtime.local.telemetry import TelemetryCollector
    from tests.unit.runtime.test_telemetry_collector import (
        NODES,
        PRODUCTPAGE,
        http_entry,
        http_message,
    )

    registry = CollectorRegistry()
    known = frozenset((p.workload, p.namespace) for p in NODES.values())
    collector = TelemetryCollector(NODES.get, registry, known=lambda: known)
    stream = collector.new_stream()
    forged = [
        PRODUCTPAGE.__class__(f"ghost-{n}", "default", "ghost", "v1", "unknown") for n in range(300)
    ]
    entries = [http_entry(source=ghost) for ghost in forged] + [http_entry()]
    collector.ingest(stream, http_message(entries, "reviews-v2-0", "inbound"))
    text = generate_latest(registry).decode()
    assert "ghost" not in text
    sources = {
        line.split('source_workload="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("istio_requests_total{")
    }
    assert sources == {"unknown", "productpage-v1"}
    assert collector.folded._value.get() == 300  # type: ignore[attr-defined]


def test_a_config_canary_s_sets_are_counted_apart_and_its_callers_are_known() -> None:
    from canarymesh.runtime.local.telemetry import TelemetryCollector
    from tests.unit.runtime.test_telemetry_collector import NODES, REVIEWS, http_entry, http_message

    registry = CollectorRegistry()
    sets = {"productpage-v1-0": ("default/reviews-config", "canary")}
    collector = TelemetryCollector(NODES.get, registry, config_set=sets.get)
    stream = collector.new_stream()
    entries = [http_entry(500)] * 3 + [http_entry(200)] * 2
    collector.ingest(stream, http_message(entries, "productpage-v1-0", "outbound"))
    other = collector.new_stream()
    collector.ingest(other, http_message([http_entry(200)], "reviews-v2-0", "inbound"))
    text = generate_latest(registry).decode()
    head = 'canarymesh_config_canary_requests_total{config_canary="default/reviews-config",'
    mid = f'destination_service="{REVIEWS}",reporter="source",response_code='
    assert f'{head}{mid}"500",set="canary"}} 3.0' in text
    assert f'{head}{mid}"200",set="canary"}} 2.0' in text
    # The inbound stream's proxy is in no set: nothing of it is counted here.
    assert text.count("canarymesh_config_canary_requests_total{") == 2
    assert collector.callers_of(REVIEWS) == {"productpage-v1-0"}
