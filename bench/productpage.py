"""Benchmark: full ``/productpage`` requests/s and p50/p99 latency, ours against the original's
architecture, with the same real backends behind both.

Backends (started once, shared by every run): ``python -m bookinfo.details``, ``bookinfo.ratings``
and ``bookinfo.reviews`` with ``ENABLE_RATINGS=true`` (v2: black stars, so every page makes the
reviews→ratings call too). Front ends:

* ours: ``python -m bookinfo.productpage`` (aiohttp on uvloop, one pooled client session), one
  process;
* baseline, 1 worker: ``bench/baseline_productpage.py`` (Flask + ``requests.get`` per call, no
  pooling) under gunicorn with gevent workers, the original's worker class (gthread when gevent
  is missing), with one worker: the same process count as ours;
* baseline, 8 workers: the original's shipped command line (``-w 8 --keep-alive 2 -k gevent``).

Each run drives one front end at fixed concurrency with the same load generator (wrk when
installed, else an aiohttp client), after a warm-up; runs alternate between front ends for
several rounds and the table shows the median of the rounds. Every response is checked to be a
200 page with stars (``bad`` counts the others), so a fast error page cannot pass for speed.

    .venv/bin/python bench/productpage.py [--rounds 3] [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WRK = shutil.which("wrk") or ("/usr/bin/wrk" if Path("/usr/bin/wrk").exists() else None)
STAR = "glyphicon glyphicon-star"

# Counts responses that are not a 200 page with stars; wrk prints the total when it is done.
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, "STAR", 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("BAD %d\\n", total))
end
""".replace("STAR", STAR)


@dataclass
class Process:
    name: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    bad: int
    # CPU time the front end's processes (gunicorn: master and workers) spent per page.
    cpu_ms_per_page: float = 0.0
    # The same for details + reviews + ratings together: the share no front end can save.
    backend_cpu_ms_per_page: float = 0.0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants, from /proc."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, argv: list[str], env: dict[str, str], log_dir: Path, port: int) -> Process:
    full_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    full_env.update(env)
    with (log_dir / f"{name.replace(' ', '_')}.log").open("wb") as log:
        proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_dir}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Process(name, port, proc)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{name} did not listen on {port}; see {log_dir}")


def service(module: str, log_dir: Path, env: dict[str, str] | None = None) -> Process:
    port = free_port()
    argv = [sys.executable, "-m", module, str(port), "--host", "127.0.0.1"]
    return start(module, argv, env or {}, log_dir, port)


def start_backends(log_dir: Path) -> tuple[list[Process], dict[str, str]]:
    ratings = service("bookinfo.ratings", log_dir)
    reviews = service(
        "bookinfo.reviews",
        log_dir,
        {
            "ENABLE_RATINGS": "true",
            "STAR_COLOR": "black",
            "RATINGS_HOSTNAME": "127.0.0.1",
            "RATINGS_SERVICE_PORT": str(ratings.port),
            "HOSTNAME": "reviews-v2-bench",
        },
    )
    details = service("bookinfo.details", log_dir)
    env = {
        "DETAILS_HOSTNAME": "127.0.0.1",
        "DETAILS_SERVICE_PORT": str(details.port),
        "REVIEWS_HOSTNAME": "127.0.0.1",
        "REVIEWS_SERVICE_PORT": str(reviews.port),
        "RATINGS_HOSTNAME": "127.0.0.1",
        "RATINGS_SERVICE_PORT": str(ratings.port),
    }
    return [ratings, reviews, details], env


def gunicorn_worker_class() -> str:
    try:
        import gevent  # noqa: F401
    except ImportError:
        return "gthread"
    return "gevent"


def start_front_ends(log_dir: Path, env: dict[str, str]) -> list[Process]:
    ours = service("bookinfo.productpage", log_dir, env)
    ours.name = "ours: aiohttp, 1 process"
    worker = gunicorn_worker_class()
    fronts = [ours]
    for workers in (1, 8):
        port = free_port()
        argv = [
            str(BIN / "gunicorn"),
            "--pythonpath",
            str(REPO / "bench"),
            "baseline_productpage:create_app()",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "-k",
            worker,
            "--keep-alive",
            "2",
            "--log-level",
            "warning",
        ]
        if worker == "gthread":
            argv += ["--threads", "32"]
        name = f"baseline: Flask+gunicorn {worker}, {workers} worker{'s' if workers > 1 else ''}"
        fronts.append(start(name, argv, env, log_dir, port))
    return fronts


def check_page(url: str) -> None:
    with urllib.request.urlopen(f"{url}/productpage", timeout=20) as resp:
        html = resp.read().decode()
    if html.count(f'id="{STAR}"') != 9:
        raise RuntimeError(f"{url}/productpage does not show 9 stars: the backends are not ready")


def run_wrk(url: str, connections: int, seconds: float, script: Path) -> Result:
    out = subprocess.run(
        [
            WRK,
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--latency",
        ]
        + ["-s", str(script), f"{url}/productpage"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {
        m.group(1): float(m.group(2)) * units[m.group(3)]
        for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = int(re.search(r"^BAD (\d+)$", out, re.M).group(1))  # type: ignore[union-attr]
    return Result(rps, pct["50"], pct["99"], total, bad)


async def _aiohttp_load(url: str, connections: int, seconds: float) -> Result:
    latencies: list[float] = []
    bad = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal bad
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with client.get(f"{url}/productpage") as resp:
                    body = await resp.text()
                latencies.append((time.perf_counter() - started) * 1000)
                if resp.status != 200 or STAR not in body:
                    bad += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(len(latencies) / elapsed, statistics.median(latencies), p99, len(latencies), bad)


def run_load(url: str, connections: int, seconds: float, script: Path) -> Result:
    if WRK:
        return run_wrk(url, connections, seconds, script)
    return asyncio.run(_aiohttp_load(url, connections, seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before each run")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="bench-productpage-"))
    script = log_dir / "check.lua"
    script.write_text(WRK_SCRIPT)
    generator = f"wrk ({WRK})" if WRK else "aiohttp load generator"
    print(
        f"load: {generator}, {args.connections} connections, {args.duration:g}s per run, "
        f"{args.rounds} rounds; logs in {log_dir}"
    )
    processes: list[Process] = []
    try:
        backends, env = start_backends(log_dir)
        processes += backends
        fronts = start_front_ends(log_dir, env)
        processes += fronts
        results: dict[str, list[Result]] = {f.name: [] for f in fronts}
        for front in fronts:
            check_page(front.url)
        for round_no in range(args.rounds):
            order = fronts if round_no % 2 == 0 else list(reversed(fronts))
            for front in order:
                run_load(front.url, args.connections, args.warmup, script)
                cpu_before = tree_cpu_seconds(front.proc.pid)
                backend_before = sum(tree_cpu_seconds(b.proc.pid) for b in backends)
                result = run_load(front.url, args.connections, args.duration, script)
                cpu = tree_cpu_seconds(front.proc.pid) - cpu_before
                backend_cpu = sum(tree_cpu_seconds(b.proc.pid) for b in backends) - backend_before
                result.cpu_ms_per_page = 1000 * cpu / max(1, result.requests)
                result.backend_cpu_ms_per_page = 1000 * backend_cpu / max(1, result.requests)
                results[front.name].append(result)
                print(
                    f"  round {round_no + 1}: {front.name:<44} {result.rps:7.1f} req/s  "
                    f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms  "
                    f"cpu {result.cpu_ms_per_page:5.2f} ms/page "
                    f"(backends {result.backend_cpu_ms_per_page:4.2f})  bad {result.bad}"
                )
        report(results, fronts[0].name)
    finally:
        for process in reversed(processes):
            process.stop()


def report(results: dict[str, list[Result]], ours: str) -> None:
    def median(name: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[name])

    print()
    header = f"{'front end (median of the rounds)':<46} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}"
    print(f"{header} {'cpu ms/page':>12} {'backends':>9} {'bad':>5}")
    for name, runs in results.items():
        print(
            f"{name:<46} {median(name, 'rps'):8.1f} {median(name, 'p50_ms'):8.1f} "
            f"{median(name, 'p99_ms'):8.1f} {median(name, 'cpu_ms_per_page'):12.2f} "
            f"{median(name, 'backend_cpu_ms_per_page'):9.2f} {sum(r.bad for r in runs):5d}"
        )
    print()
    for name in results:
        if name == ours:
            continue
        ratio = median(ours, "rps") / median(name, "rps")
        p99 = median(name, "p99_ms") / median(ours, "p99_ms")
        cpu = median(name, "cpu_ms_per_page") / median(ours, "cpu_ms_per_page")
        print(
            f"ours vs {name}: {ratio:.2f}x throughput, {p99:.2f}x lower p99, "
            f"{cpu:.2f}x less CPU per page"
        )


if __name__ == "__main__":
    main()
