"""Start every Bookinfo service as a local process and print the productpage URL.

``python -m bookinfo.launch`` is what ``scripts/demo`` runs until the local mesh takes over: with no
mesh, productpage talks to one reviews version directly (``--reviews v1|v2|v3``), while all three
versions run and can be called on their own ports. Ctrl-C (or SIGTERM) stops everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

# The env each version's image sets (Istio's docker-bake.hcl build args).
REVIEWS_ENV: dict[str, dict[str, str]] = {
    "v1": {"ENABLE_RATINGS": "false"},
    "v2": {"ENABLE_RATINGS": "true"},
    "v3": {"ENABLE_RATINGS": "true", "STAR_COLOR": "red"},
}


@dataclass
class Launched:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not become healthy in {timeout:.0f}s")


def _start(name: str, module: str, host: str, port: int, env: dict[str, str]) -> Launched:
    full_env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    full_env.update(env)
    full_env.setdefault("HOSTNAME", f"{name}-local")
    proc = subprocess.Popen(
        [sys.executable, "-m", module, str(port), "--host", host],
        env=full_env,
        stdout=subprocess.DEVNULL,
    )
    return Launched(name, port, proc, env)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bookinfo.launch", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address every service binds")
    parser.add_argument("--port", type=int, default=9080, help="productpage port (0: any free)")
    parser.add_argument("--reviews", choices=sorted(REVIEWS_ENV), default="v2")
    parser.add_argument(
        "--duration", type=float, default=0, help="seconds to run (0: until Ctrl-C)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    host = args.host
    ports = {name: _free_port(host) for name in ("details", "ratings", "v1", "v2", "v3")}
    launched = [
        _start("details-v1", "bookinfo.details", host, ports["details"], {}),
        _start("ratings-v1", "bookinfo.ratings", host, ports["ratings"], {}),
    ]
    ratings_env = {"RATINGS_HOSTNAME": host, "RATINGS_SERVICE_PORT": str(ports["ratings"])}
    for version, env in REVIEWS_ENV.items():
        name = f"reviews-{version}"
        launched.append(_start(name, "bookinfo.reviews", host, ports[version], env | ratings_env))
    page_port = args.port or _free_port(host)
    page_env = {
        "DETAILS_HOSTNAME": host,
        "DETAILS_SERVICE_PORT": str(ports["details"]),
        "REVIEWS_HOSTNAME": host,
        "REVIEWS_SERVICE_PORT": str(ports[args.reviews]),
        "RATINGS_HOSTNAME": host,
        "RATINGS_SERVICE_PORT": str(ports["ratings"]),
    }
    launched.append(_start("productpage-v1", "bookinfo.productpage", host, page_port, page_env))
    stop = False

    def _request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _request_stop)
    try:
        for svc in launched:
            _wait_healthy(f"http://{host}:{svc.port}/health", svc.proc)
        for svc in launched:
            print(f"  {svc.name:<16} http://{host}:{svc.port}")
        print(f"\nproductpage (reviews {args.reviews}): http://{host}:{page_port}/productpage")
        print("Press Ctrl-C to stop.", flush=True)
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop and (deadline is None or time.monotonic() < deadline):
            if any(svc.proc.poll() is not None for svc in launched):
                dead = [svc.name for svc in launched if svc.proc.poll() is not None]
                print(f"stopped: {', '.join(dead)} exited", file=sys.stderr)
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        for svc in launched:
            if svc.proc.poll() is None:
                svc.proc.terminate()
        for svc in launched:
            try:
                svc.proc.wait(10)
            except subprocess.TimeoutExpired:
                svc.proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
