"""``canarymesh up``, ``down`` and ``status``: the lifecycle of a local mesh.

Thin: :mod:`canarymesh.runtime.local.launcher` starts and stops the control plane; ``status``
reads ``GET /v1/status`` from it.
"""

from __future__ import annotations

import json
import time

import click

from canarymesh.cli.common import client, handle_errors, state_dir, state_dir_option
from canarymesh.runtime.local import launcher
from canarymesh.runtime.local.addresses import DEFAULT_POD_CIDR, DEFAULT_SERVICE_CIDR
from canarymesh.runtime.local.api_client import daemon_info

__all__ = ["down_command", "status_command", "up_command"]


@click.command("up")
@click.option(
    "--ingress-port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Local port of the ingress gateway's first HTTP server (8080 or 80); 0 picks one.",
)
@click.option("--no-prometheus", is_flag=True, help="Run the mesh without Prometheus.")
@click.option(
    "--restart-backoff",
    type=float,
    default=0.5,
    show_default=True,
    help="Seconds before a crashed process is restarted the first time (doubles after).",
)
@click.option(
    "--network",
    type=click.Choice(["auto", "pod", "host"]),
    default="auto",
    show_default=True,
    help="pod: every pod in a network namespace of its own with Istio's traffic capture (needs"
    " root on Linux); host: pods share the host's network (apps reach their sidecar as"
    " HTTP_PROXY); auto: pod where it can be made, else host.",
)
@click.option(
    "--pod-cidr", default=None, help=f"Pod IP range (pod networks) [default {DEFAULT_POD_CIDR}]."
)
@click.option(
    "--service-cidr",
    default=None,
    help=f"ClusterIP range (pod networks) [default {DEFAULT_SERVICE_CIDR}].",
)
@click.option(
    "--trace-sampling",
    type=click.FloatRange(0.0, 100.0),
    default=1.0,
    show_default=True,
    help="Percent of requests traced, as Istio's meshConfig.defaultConfig.tracing.sampling"
    " (a request with x-client-trace-id is always traced).",
)
@state_dir_option
@handle_errors
def up_command(
    ingress_port: int,
    no_prometheus: bool,
    restart_backoff: float,
    network: str,
    pod_cidr: str | None,
    service_cidr: str | None,
    trace_sampling: float,
) -> None:
    """Start the control plane, the ingress gateway and Prometheus; return when ready."""
    started = time.monotonic()
    chosen, fallback = launcher.choose_network(network)
    if fallback is not None:
        click.echo(f"pod networks are not available ({fallback}): pods share the host network")
    info = launcher.start(
        state_dir(),
        ingress_port,
        prometheus=not no_prometheus,
        restart_backoff=restart_backoff,
        network=chosen,
        pod_cidr=pod_cidr,
        service_cidr=service_cidr,
        trace_sampling=trace_sampling,
    )
    click.echo(f"local mesh up in {time.monotonic() - started:.1f}s ({info['state_dir']})")
    click.echo(f"  network     {_network_line(info)}")
    click.echo(f"  ingress     {info['ingress_url']}")
    if info.get("prometheus_url"):
        click.echo(f"  prometheus  {info['prometheus_url']}")


def _network_line(info: dict[str, object]) -> str:
    if info.get("network") == "pod":
        return f"pod (pods {info.get('pod_cidr')}, services {info.get('service_cidr')})"
    return "host (shared; apps reach their sidecar as HTTP_PROXY)"


@click.command("down")
@state_dir_option
@handle_errors
def down_command() -> None:
    """Stop the control plane and every process it started."""
    pid = launcher.stop(state_dir())
    if pid is None:
        click.echo(f"no local mesh running in {state_dir()}")
    else:
        click.echo(f"local mesh stopped (control plane pid {pid})")


@click.command("status")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@state_dir_option
@handle_errors
def status_command(output: str) -> None:
    """Show the mesh's URLs and every component with its pid."""
    if daemon_info(state_dir()) is None:
        if output == "json":
            click.echo(json.dumps({"running": False, "state_dir": str(state_dir())}))
        else:
            click.echo(f"no local mesh running in {state_dir()}")
        raise SystemExit(3)
    status = client().status()
    if output == "json":
        click.echo(json.dumps({"running": True, **status.model_dump(mode="json")}, indent=2))
        return
    click.echo(f"state dir   {status.state_dir}")
    click.echo(f"ingress     {status.ingress_url}")
    click.echo(f"prometheus  {status.prometheus_url or '-'}")
    click.echo(f"network     {_network_line(status.model_dump())}")
    click.echo(f"ads         {status.ads}")
    for gateway in status.gateways:
        ports = ", ".join(f"{k}->{v}" for k, v in gateway.ports.items()) or "none yet"
        click.echo(f"gateway     {gateway.name}: server port -> local port: {ports}")
    click.echo(f"{'COMPONENT':<52} {'PID':>8}  {'READY':<5}  {'STATUS':<16} RESTARTS")
    for component in status.components:
        ready = "yes" if component.ready else "no"
        click.echo(
            f"{component.name:<52} {component.pid or '-':>8}  {ready:<5}"
            f"  {component.phase or '-':<16} {component.restarts}"
        )
