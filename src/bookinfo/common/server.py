"""Process edge of every Bookinfo service: command-line parsing, uvloop, request log, SIGTERM.

Each service module calls :func:`serve` from its ``__main__`` with a factory that builds the aiohttp
application from the environment. Nothing here runs at import time.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import uvloop
from aiohttp import web

DEFAULT_PORT = 9080
LOG = logging.getLogger("bookinfo.access")

AppFactory = Callable[[Mapping[str, str]], web.Application]


def parse_args(service: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``python -m bookinfo.<service> [PORT] [--host HOST]``, as the original images take it."""
    parser = argparse.ArgumentParser(prog=f"python -m bookinfo.{service}")
    parser.add_argument("port", nargs="?", type=int, default=DEFAULT_PORT, help="TCP port (9080)")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (0.0.0.0)")
    return parser.parse_args(argv)


@web.middleware
async def access_log(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """One line per request: method, path, status, duration; written even when the handler fails."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed_ms = (time.perf_counter() - started) * 1000
        LOG.info(
            '%s "%s %s" %d %.1fms',
            request.remote,
            request.method,
            request.path_qs,
            status,
            elapsed_ms,
        )


def serve(service: str, factory: AppFactory, argv: Sequence[str] | None = None) -> None:
    """Run one service until SIGTERM or SIGINT, then close connections and exit 0."""
    args = parse_args(service, argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"%(asctime)s {service} %(message)s",
    )
    uvloop.run(_run(factory(os.environ), args.host, args.port))


async def _run(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    LOG.info("listening on %s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    LOG.info("shutting down")
    await runner.cleanup()
