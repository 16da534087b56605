"""Requests lost while the local control plane is killed and comes back (issue 13's figure).

Run: ``.venv/bin/python bench/survival.py [--kills 3] [--rate 40]``.

A mesh runs Bookinfo behind its gateway; a client sends ``--rate`` pages a second through the
ingress. The control plane is SIGKILLed ``--kills`` times, each once the previous one is back;
the bench reports, per kill, the pages served and lost meanwhile (a page is lost if it is not a
200 with the book's details and reviews), the seconds until a new control plane answers, and
whether every pod was adopted (the same processes, not restarted). The baseline is the same
client over the same duration with no kill, in the same run (goal: 0 lost in both).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).parents[1]
CANARYMESH = str(Path(sys.executable).parent / "canarymesh")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cli(state: Path, *args: str) -> str:
    done = subprocess.run(
        [CANARYMESH, "--state-dir", str(state), *args], capture_output=True, text=True, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"canarymesh {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def status(state: Path) -> dict[str, Any]:
    done = subprocess.run(
        [CANARYMESH, "--state-dir", str(state), "status", "-o", "json"],
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


class Load(threading.Thread):
    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.interval = url + "/productpage", 1 / rate
        self.good = self.lost = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                with _DIRECT.open(self.url, timeout=10) as response:
                    body = response.read()
                whole = b"Book Details" in body and b"Error fetching" not in body
                if response.status == 200 and whole:
                    self.good += 1
                else:
                    self.lost += 1
            except Exception:  # every failure is a lost page
                self.lost += 1
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def processes(state: Path) -> dict[str, int]:
    pods = json.loads(cli(state, "get", "pods", "-o", "json"))["items"]
    return {c["name"]: c["pid"] for p in pods for c in p["containers"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--rate", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-survival-") as tmp:
        state = Path(tmp) / "state"
        cli(state, "up", "--ingress-port", "0")
        rows = []
        try:
            files = (
                "bookinfo/platform/kube/bookinfo.yaml",
                "bookinfo/networking/bookinfo-gateway.yaml",
            )
            cli(state, "apply", *(a for f in files for a in ("-f", f)), "--wait")
            url = str(status(state)["ingress_url"])
            for kill in range(args.kills + 1):
                before, pids = status(state), processes(state)
                load = Load(url, args.rate)
                load.start()
                time.sleep(1.0)
                started = time.monotonic()
                if kill:  # the first round is the baseline: no kill
                    os.kill(int(before["pid"]), signal.SIGKILL)
                back = None
                while time.monotonic() - started < 60:
                    now = status(state)
                    if now.get("pid") not in (None, before["pid"]) or not kill:
                        back = time.monotonic() - started
                        break
                    time.sleep(0.05)
                time.sleep(max(0.0, 10.0 - (time.monotonic() - started)))
                load.stop.set()
                load.join()
                adopted = processes(state) == pids
                rows.append((kill, load.good, load.lost, back, adopted, status(state)))
        finally:
            cli(state, "down")
    print(f"{args.rate:.0f} pages/s through the ingress, about 11 s per round")
    for kill, good, lost, back, adopted, now in rows:
        label = "baseline (no kill)" if kill == 0 else f"kill {kill}"
        shown = "-" if kill == 0 or back is None else f"{back:.2f} s"
        print(
            f"  {label:<20} served {good:4d}  lost {lost:3d}  control plane back in {shown:>8}"
            f"  pods kept: {'yes' if adopted else 'NO'}  adopted {now.get('adopted', '-')}"
        )


if __name__ == "__main__":
    main()
