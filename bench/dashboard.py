"""Dashboard responsiveness with 50 workloads and 24 h of 1 s data.

A fake Prometheus on 127.0.0.1 answers the dashboard's real PromQL with synthetic Istio data:
10 apps x 5 versions = 50 workloads, each calling every version of the next two apps (430
edges), and per-version series sampled every second for 24 h (a range answer holds one point
per requested step, as Prometheus' does). Answers are built once per (query, step) and cached,
so the fake's own cost is not measured.

Measured: the dashboard's API response times (graph, service over 24 h) and the page's render
time in Debian's Chromium (navigation until the view is drawn), for ours (a chart is drawn from
240 points per series) against a baseline that fetches every 10 s of the day (8,640 points per
series, what a dashboard that plots raw scrapes would approach). Run:
``.venv/bin/python bench/dashboard.py`` (about a minute).
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import threading
import time
import urllib.request
from typing import Any

from aiohttp import web

from canarymesh.dashboard.app import create_app
from canarymesh.dashboard.settings import DashboardSettings

APPS = [f"app{i:02d}" for i in range(10)]
VERSIONS = [f"v{i}" for i in range(1, 6)]
DAY = 86_400
NOW = 1_795_000_000.0
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def side(prefix: str, app: str, version: str) -> dict[str, str]:
    return {
        f"{prefix}_workload": f"{app}-{version}",
        f"{prefix}_workload_namespace": "default",
        f"{prefix}_app": app,
        f"{prefix}_version": version,
    }


def edges() -> list[dict[str, str]]:
    found = [
        {**side("source", "istio-ingressgateway", "unknown"), **side("destination", APPS[0], v)}
        for v in VERSIONS
    ]
    for i, app in enumerate(APPS):
        for callee in APPS[i + 1 : i + 3]:
            for v in VERSIONS:
                for w in VERSIONS:
                    found.append({**side("source", app, v), **side("destination", callee, w)})
    for labels in found:
        labels["destination_service"] = f"{labels['destination_app']}.default.svc.cluster.local"
    return found


def vector(promql: str) -> dict[str, Any]:
    value = 12.5 if "histogram_quantile" in promql else 0.2 if "5.." in promql else 4.0
    rows = [{"metric": e, "value": [NOW, str(value)]} for e in edges()]
    return {"resultType": "vector", "result": rows}


def matrix(promql: str, start: float, end: float, step: float) -> dict[str, Any]:
    count = int((end - start) // step) + 1
    rows = []
    for n, version in enumerate(VERSIONS):
        values = [
            [start + i * step, f"{10 + n + math.sin((start + i * step) / 3600 + n):.4f}"]
            for i in range(count)
        ]
        rows.append({"metric": {"destination_version": version}, "values": values})
    return {"resultType": "matrix", "result": rows}


class FakePrometheus:
    def __init__(self) -> None:
        self.cache: dict[tuple[str, float], bytes] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [web.get("/api/v1/query", self.query), web.get("/api/v1/query_range", self.range)]
        )
        return app

    def _answer(self, key: tuple[str, float], build: Any) -> web.Response:
        if key not in self.cache:
            self.cache[key] = json.dumps({"status": "success", "data": build()}).encode()
        return web.Response(body=self.cache[key], content_type="application/json")

    async def query(self, request: web.Request) -> web.Response:
        promql = request.query["query"]
        return self._answer((promql, 0.0), lambda: vector(promql))

    async def range(self, request: web.Request) -> web.Response:
        q = request.query
        step = float(q["step"])
        # The range's end moves with the clock; the answer's shape depends only on the step.
        return self._answer((q["query"], step), lambda: matrix(q["query"], NOW - DAY, NOW, step))


def serve(app: web.Application, ready: threading.Event, port: list[int]) -> None:
    async def main() -> None:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def start(app: web.Application) -> str:
    ready, port = threading.Event(), []  # type: ignore[var-annotated]
    threading.Thread(target=serve, args=(app, ready, port), daemon=True).start()
    ready.wait(10)
    return f"http://127.0.0.1:{port[0]}/"


def timed_get(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with _NO_PROXY.open(url, timeout=120) as response:
        size = len(response.read())
    return (time.perf_counter() - started) * 1000, size


def api_times(base: str, path: str, runs: int = 7) -> tuple[float, int]:
    timed_get(base + path)  # warm the fake's cache
    samples = [timed_get(base + path) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), samples[0][1]


def render_times(base: str, view: str, runs: int = 5) -> float:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        samples = []
        for _ in range(runs + 1):
            page.goto("about:blank")
            started = time.perf_counter()
            page.goto(f"{base}#{view}")
            page.wait_for_selector(f"body[data-loaded={view}]", timeout=120_000)
            samples.append((time.perf_counter() - started) * 1000)
        browser.close()
    return statistics.median(samples[1:])


def main() -> None:
    prom = start(FakePrometheus().app())
    service = "api/service?service=app03.default.svc.cluster.local&window=1m"
    rows = []
    for label, points in (
        ("ours (240 points/series)", 240),
        ("baseline (8,640 points/series)", 8640),
    ):
        settings = DashboardSettings(
            prom, chart_range_seconds=DAY, chart_points=points, refresh_seconds=3600
        )
        base = start(create_app(settings))
        graph_ms, graph_bytes = api_times(base, "api/graph?window=1m")
        service_ms, service_bytes = api_times(base, service)
        rows.append((label, graph_ms, graph_bytes, service_ms, service_bytes,
                     render_times(base, "graph"), render_times(base, "service")))  # fmt: skip
    print("| variant | /api/graph | /api/service (24 h) | graph page | service page |")
    print("|---|---|---|---|---|")
    for label, g_ms, g_b, s_ms, s_b, g_r, s_r in rows:
        print(f"| {label} | {g_ms:.0f} ms ({g_b / 1024:.0f} KiB) | "
              f"{s_ms:.0f} ms ({s_b / 1024:.0f} KiB) | {g_r:.0f} ms | {s_r:.0f} ms |")  # fmt: skip
    ours, base = rows
    print(
        f"service API: baseline / ours = {base[3] / ours[3]:.1f}x; "
        f"service page: {base[6] / ours[6]:.1f}x; graph page (same data): {base[5] / ours[5]:.2f}x"
    )


if __name__ == "__main__":
    main()
