"""``canarymesh dashboard``: serve the web dashboard on 127.0.0.1 (the default action), or print
the URL of the mesh's Prometheus (``canarymesh dashboard prometheus``).

Against the local mesh the data sources come from the running control plane; against a cluster,
``--prometheus-url`` (and ``--tracing-url`` for a Zipkin-compatible query API) make it read-only.
The app itself is :func:`canarymesh.dashboard.app.create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import webbrowser

import click

from canarymesh.cli.common import client, handle_errors, state_dir, state_dir_option
from canarymesh.errors import ConfigError

__all__ = ["dashboard_command"]


@click.group("dashboard", invoke_without_command=True)
@click.option("--port", type=click.IntRange(0, 65535), default=20001, show_default=True)
@click.option("--open", "open_browser", is_flag=True, help="Open a browser at the dashboard.")
@click.option(
    "--prometheus-url",
    help="A cluster's Prometheus (read-only mode); default: the local mesh's.",
)
@click.option("--tracing-url", help="A Zipkin-compatible query API (e.g. a cluster's Zipkin).")
@click.option("--refresh", type=click.FloatRange(0.5, 3600), default=5.0, show_default=True)
@state_dir_option
@click.pass_context
@handle_errors
def dashboard_command(
    ctx: click.Context,
    port: int,
    open_browser: bool,
    prometheus_url: str | None,
    tracing_url: str | None,
    refresh: float,
) -> None:
    """Serve the mesh dashboard (graph, services, rollouts, config, traces) on 127.0.0.1."""
    if ctx.invoked_subcommand is not None:
        return
    from canarymesh.dashboard.settings import DashboardSettings

    if prometheus_url:
        settings = DashboardSettings(prometheus_url, tracing_url, None, refresh)
    else:
        status = client().status()
        settings = DashboardSettings(
            status.prometheus_url, tracing_url or status.tracing_url, state_dir(), refresh
        )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, port, open_browser))


async def _serve(settings: object, port: int, open_browser: bool) -> None:
    from aiohttp import web

    from canarymesh.dashboard.app import create_app
    from canarymesh.dashboard.settings import DashboardSettings

    assert isinstance(settings, DashboardSettings)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except OSError as err:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on 127.0.0.1:{port}: {err}") from None
    bound = runner.addresses[0][1] if runner.addresses else port
    url = f"http://127.0.0.1:{bound}/"
    click.echo(f"dashboard {url} ({settings.mode}; Ctrl-C stops it)", err=False)
    if open_browser and not _open(url):
        click.echo("no browser found; open the URL yourself", err=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def _open(url: str) -> bool:
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return webbrowser.open(url)


@dashboard_command.command("prometheus")
@state_dir_option
@handle_errors
def prometheus_command() -> None:
    """Print the URL of the mesh's Prometheus."""
    url = client().status().prometheus_url
    if not url:
        raise click.ClickException("this mesh runs without Prometheus")
    click.echo(url)
