"""The rollouts view in Chromium following a real canary on a local mesh, and its promote button.

Bookinfo with all traffic on reviews v1 and 20 requests/s through the ingress; a Canary of
reviews v1 -> v3 whose second analysis lasts ten minutes, so only the button can finish it.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from canarymesh.ports import state_of
from canarymesh.ports.load import LoadGenerator
from canarymesh.rollout.phases import Phase
from canarymesh.runtime.local.rollout_store import RolloutStore
from tests.integration.dashboard.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS
from tests.integration.mesh.conftest import CANARYMESH, LocalMesh, start_mesh
from tests.support.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]
playwright = pytest.importorskip("playwright.sync_api")
CANARY = """
apiVersion: canarymesh.io/v1alpha1
kind: Canary
metadata: {name: reviews, namespace: default}
spec:
  target: {host: reviews, virtualService: reviews, stableSubset: v1, canarySubset: v3}
  strategy:
    canary:
      steps:
        - setWeight: 20
        - analysis: {duration: 10s}
        - setWeight: 50
        - analysis: {duration: 600s}
  analysis:
    judge: threshold
    interval: 2s
    minRequests: 10
    metrics:
      - name: request-success-rate
        thresholdRange: {min: 99}
      - name: request-duration
        thresholdRange: {max: 2000}
  progressDeadline: 20m
"""
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("dash-rollout") / "state")
    load = None
    try:
        mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "-f",
                 "bookinfo/networking/destination-rule-all.yaml", "-f",
                 "bookinfo/networking/virtual-service-all-v1.yaml", "-f",
                 "bookinfo/networking/bookinfo-gateway.yaml", "--wait")  # fmt: skip
        load = LoadGenerator(f"{mesh.ingress}/productpage", 20.0, 300.0).start()
        yield mesh
    finally:
        if load is not None:
            load.stop()
        mesh.down()


@pytest.fixture(scope="module")
def dashboard(mesh: LocalMesh) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [CANARYMESH, "dashboard", "--port", str(port), "--refresh", "1"]
        + ["--state-dir", str(mesh.state_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "dashboard http://127.0.0.1:" in process.stdout.readline()
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def post(url: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, method="POST", headers=headers)
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def step_status(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all(
            "[data-rollout='default/reviews'] [data-testid=steps] li",
            "items => items.map(i => i.dataset.status)",
        )
    )


def test_rollout_view_follows_the_canary_and_promote_finishes_it(
    mesh: LocalMesh, dashboard: str, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(dashboard + "#rollouts")
        page.wait_for_selector("body[data-loaded=rollouts]")
        assert "No rollout yet" in page.inner_text("#rollouts-body")
        (tmp_path / "canary.yaml").write_text(CANARY)
        mesh.cli("rollout", "start", "-f", str(tmp_path / "canary.yaml"))
        page.wait_for_selector("[data-rollout='default/reviews']", timeout=30_000)
        # Step by step: the analysis of 20% is current, later the analysis of 50%.
        seen: list[list[str]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            statuses = step_status(page)
            if not seen or seen[-1] != statuses:
                seen.append(statuses)
            if statuses == ["done", "done", "done", "current"]:
                break
            time.sleep(0.3)
        assert seen[-1] == ["done", "done", "done", "current"], seen
        assert ["done", "current", "pending", "pending"] in seen, seen
        assert page.inner_text("[data-rollout='default/reviews'] [data-testid=canary-weight]") == (
            "v3 50%"
        )
        # Read-only without the token: the buttons are disabled and the API refuses.
        assert page.is_disabled("button[data-action=promote]")
        status, body = post(dashboard + "api/rollouts/default/reviews/promote", None)
        assert status == 401 and "token" in body["error"]
        token = (mesh.state_dir / "token").read_text().strip()
        page.fill("#token", token)
        page.dispatch_event("#token", "change")
        page.wait_for_selector("button[data-action=promote]:not([disabled])")
        shots = tmp_path / "screenshots"
        shots.mkdir()
        page.screenshot(path=str(shots / "rollout-progressing.png"), full_page=True)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
        page.click("button[data-action=promote]")
        page.wait_for_selector(
            "[data-rollout='default/reviews'][data-phase=Succeeded]", timeout=60_000
        )
        assert dialogs == ["promote rollout default/reviews?"]
        page.screenshot(path=str(shots / "rollout-promoted.png"), full_page=True)
        print(f"\nscreenshots in {shots}")
        browser.close()
    state = state_of(RolloutStore(mesh.state_dir).load("default/reviews"))
    assert state is not None and state.phase is Phase.SUCCEEDED
    assert any("promot" in entry.reason.lower() for entry in state.history)
