"""``canarymesh dashboard`` as a user runs it: against a cluster's Prometheus it serves read-only;
without a running mesh or with a taken port it says why and exits."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

CANARYMESH = str(Path(sys.executable).parent / "canarymesh")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_cluster_mode_prints_the_url_and_refuses_actions(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [CANARYMESH, "dashboard", "--port", "0", "--prometheus-url", "http://127.0.0.1:9"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("dashboard http://127.0.0.1:") and "(cluster;" in line, line
        url = line.split()[1]
        with _NO_PROXY.open(url + "api/info", timeout=10) as response:
            info = json.loads(response.read())
        assert (info["mode"], info["read_only"]) == ("cluster", True)
        request = urllib.request.Request(
            url + "api/rollouts/default/reviews/promote", method="POST"
        )
        try:
            _NO_PROXY.open(request, timeout=10)
            raise AssertionError("an action was accepted in read-only mode")
        except urllib.error.HTTPError as err:
            assert err.code == 403
        with _NO_PROXY.open(url + "api/rollouts", timeout=10) as response:
            assert json.loads(response.read()) == {"rollouts": [], "actions": False}
    finally:
        process.terminate()
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()


def test_without_a_mesh_or_with_a_taken_port_it_says_why(tmp_path: Path) -> None:
    done = subprocess.run(
        [CANARYMESH, "dashboard", "--state-dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "no local mesh is running" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [CANARYMESH, "dashboard", "--port", str(port), "--prometheus-url", "http://x"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
