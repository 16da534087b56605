"""``canarymesh proxy-status`` and ``proxy-config``: istioctl's views of the local proxies.

``proxy-status`` shows per proxy and xDS type SYNCED, NOT SENT, STALE or NACKED (with Envoy's
message), from the ADS server's ACK/NACK records. ``proxy-config`` reads one Envoy's admin API
(``config_dump``, ``clusters``) through the control plane and prints istioctl-like tables, or the
raw JSON with ``-o json``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

import click

from canarymesh.cli.common import client, handle_errors, state_dir_option
from canarymesh.cli.get import Doc, Row, table

if TYPE_CHECKING:
    from canarymesh.runtime.local.api_models import ProxyStatus

__all__ = ["proxy_config_command", "proxy_status_command"]

SECTIONS = ("clusters", "listeners", "routes", "endpoints", "all")
_TYPES = (
    ("CDS", "Cluster"),
    ("LDS", "Listener"),
    ("EDS", "ClusterLoadAssignment"),
    ("RDS", "RouteConfiguration"),
    ("SDS", "Secret"),
)


@click.command("proxy-status")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@state_dir_option
@handle_errors
def proxy_status_command(output: str) -> None:
    """Which proxies hold the latest config (SYNCED), which rejected it (NACKED) and why."""
    proxies = client().proxy_status()
    if output == "json":
        click.echo(json.dumps([_proxy_json(p) for p in proxies], indent=2))
        return
    rows: list[Row] = [["NAME", *(short for short, _ in _TYPES), "VERSION"]]
    problems = []
    for proxy in proxies:
        # Istio's NAME: <pod>.<namespace> (a pod's proxy id already is).
        name = proxy.name
        if not name.endswith(f".{proxy.namespace}"):
            name = f"{name}.{proxy.namespace}"
        if not proxy.connected:
            rows.append([name, *("DISCONNECTED" for _ in _TYPES), "-"])
            continue
        states = [proxy.types.get(full, "NOT SENT") for _, full in _TYPES]
        rows.append([name, *states, (proxy.version or "-")[:12]])
        for type_name, message in proxy.errors.items():
            problems.append(f"{name} NACKED {type_name}: {reason(message)}")
    click.echo(table(rows))
    for problem in problems:
        click.echo(problem)


def _proxy_json(proxy: ProxyStatus) -> dict[str, object]:
    return proxy.model_dump(mode="json")


def reason(message: str) -> str:
    """Envoy's rejection without the proto dump it embeds (``-o json`` keeps the whole text)."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if len(lines) <= 1:
        return message.strip()
    return lines[-1].removeprefix(":").strip()


def _cluster_rows(items: list[Doc]) -> list[Row]:
    rows: list[Row] = [["SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE"]]
    for item in items:
        cluster = cast(Doc, item.get("cluster", {}))
        name = str(cluster.get("name", ""))
        parts = name.split("|")
        if len(parts) == 4:
            direction, port, subset, fqdn = parts
            rows.append([fqdn, port, subset or "-", direction, str(cluster.get("type", "EDS"))])
        else:
            rows.append([name, "-", "-", "-", str(cluster.get("type", "STATIC"))])
    return rows


def _listener_rows(items: list[Doc]) -> list[Row]:
    rows: list[Row] = [["NAME", "ADDRESS", "PORT", "CHAINS"]]
    for item in items:
        listener = cast(Doc, cast(Doc, item.get("active_state", {})).get("listener", {}))
        address = cast(Doc, cast(Doc, listener.get("address", {})).get("socket_address", {}))
        chains = len(cast(list[object], listener.get("filter_chains", [])))
        rows.append(
            [
                str(listener.get("name", item.get("name", ""))),
                str(address.get("address", "")),
                str(address.get("port_value", "")),
                str(chains),
            ]
        )
    return rows


def _route_rows(items: list[Doc]) -> list[Row]:
    rows: list[Row] = [["NAME", "VHOST NAME", "DOMAINS", "MATCH"]]
    for item in items:
        config = cast(Doc, item.get("route_config", {}))
        for vhost in cast(list[Doc], config.get("virtual_hosts", [])):
            domains = cast(list[str], vhost.get("domains", []))
            for route in cast(list[Doc], vhost.get("routes", [])):
                match = cast(Doc, route.get("match", {}))
                shown = next((f"{k} {v}" for k, v in match.items() if k in ("prefix", "path")), "*")
                rows.append(
                    [
                        str(config.get("name", "")),
                        str(vhost.get("name", "")),
                        ",".join(domains[:2])
                        + (f" +{len(domains) - 2}" if len(domains) > 2 else ""),
                        shown,
                    ]
                )
    return rows


def _endpoint_rows(body: Doc) -> list[Row]:
    rows: list[Row] = [["ENDPOINT", "STATUS", "CLUSTER"]]
    for cluster in cast(list[Doc], body.get("cluster_statuses", [])):
        for host in cast(list[Doc], cluster.get("host_statuses", [])):
            where = cast(Doc, host.get("address", {}))
            address = cast(Doc, where.get("socket_address", {}))
            health = cast(Doc, host.get("health_status", {}))
            status = str(health.get("eds_health_status", "HEALTHY"))
            endpoint = f"{address.get('address')}:{address.get('port_value')}"
            if "pipe" in where:  # the control plane's Unix sockets
                endpoint = "unix:" + str(cast(Doc, where["pipe"]).get("path", ""))
            rows.append([endpoint, status, str(cluster.get("name", ""))])
    return rows


@click.command("proxy-config")
@click.argument(
    "section", type=click.Choice([*SECTIONS, "cluster", "listener", "route", "endpoint"])
)
@click.argument("pod")
@click.option("-n", "--namespace", default=None, help="The pod's namespace (when ambiguous).")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@state_dir_option
@handle_errors
def proxy_config_command(section: str, pod: str, namespace: str | None, output: str) -> None:
    """Show one proxy's clusters, listeners, routes or endpoints (from its Envoy admin API).

    POD is a pod's name, ``<pod>.<namespace>`` as istioctl writes it, or a gateway's name."""
    # istioctl spells them singular (`proxy-config cluster POD`); both work.
    section = section if section in SECTIONS else section + "s"
    body = client().proxy_config(pod, section, namespace)
    if output == "json" or section == "all":
        click.echo(json.dumps(body, indent=2))
        return
    if section == "endpoints":
        click.echo(table(_endpoint_rows(body)))
        return
    items = cast(list[Doc], body.get("items", []))
    builders = {"clusters": _cluster_rows, "listeners": _listener_rows, "routes": _route_rows}
    click.echo(table(builders[section](items)))
