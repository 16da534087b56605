"""Canned Prometheus answers (the ``data`` object of /api/v1/query and /api/v1/query_range) for
the view-model tests, built from label sets so each test states only what it varies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

JsonDict = dict[str, object]
AT = 1_795_000_000.0


def edge(source: str, target: str, **extra: str) -> dict[str, str]:
    """Labels of one graph edge between two Bookinfo-style workloads (``app-version``)."""

    def side(prefix: str, workload: str) -> dict[str, str]:
        app, _, version = workload.rpartition("-") if "-v" in workload else (workload, "", "")
        return {
            f"{prefix}_workload": workload,
            f"{prefix}_workload_namespace": "istio-system" if "gateway" in workload else "default",
            f"{prefix}_app": app or workload,
            f"{prefix}_version": version or "unknown",
        }

    return {
        **side("source", source),
        **side("destination", target),
        "destination_service": f"{target.rsplit('-', 1)[0]}.default.svc.cluster.local",
        **extra,
    }


def vector(rows: Sequence[tuple[Mapping[str, str], float | str]]) -> JsonDict:
    return {
        "resultType": "vector",
        "result": [{"metric": dict(m), "value": [AT, str(v)]} for m, v in rows],
    }


def matrix(
    rows: Sequence[tuple[Mapping[str, str], Sequence[float | str]]], step: float = 15.0
) -> JsonDict:
    return {
        "resultType": "matrix",
        "result": [
            {"metric": dict(m), "values": [[AT + i * step, str(v)] for i, v in enumerate(values)]}
            for m, values in rows
        ],
    }
