"""Local programs that stand in for other projects' example images, so their manifests run on the
local mesh unchanged (the image catalog, :mod:`canarymesh.runtime.local.catalog`, maps the
images here). Each is ``python -m canarymesh.runtime.local.standins.<name> PORT --host HOST``
and answers what the image's default configuration answers; :func:`serve` is their process
edge (command line, SIGTERM, a request log on stdout).

* :mod:`.nginx`: ``nginx`` (Docker Hub's library image) without a configuration of its own:
  the welcome page at ``/``, nginx's 404 page elsewhere, ``Server: nginx/<tag's version>``.
* :mod:`.rollouts_demo`: ``argoproj/rollouts-demo:<color>``, Argo Rollouts' demo app: ``/color``
  answers the color of the tag; ``bad-<color>`` and ``slow-<color>`` behave as those images do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

from aiohttp import web

__all__ = ["serve"]

LOG = logging.getLogger("standin")


def serve(
    name: str,
    factory: Callable[[Mapping[str, str]], web.Application],
    env: Mapping[str, str],
    argv: Sequence[str] | None = None,
) -> None:
    """Run the app ``factory`` makes from ``env`` on ``PORT`` until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog=f"python -m canarymesh.runtime.local.standins.{name}")
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="0.0.0.0")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format=f"%(asctime)s {name} %(message)s"
    )
    asyncio.run(_run(factory(env), args.host, args.port))


async def _run(app: web.Application, host: str, port: int) -> None:
    runner = web.AppRunner(app, access_log=LOG)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    LOG.info("listening on %s:%d", host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
