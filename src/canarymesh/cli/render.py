"""``canarymesh render``: what one proxy would receive from the control plane, offline.

Shell: loads the manifests named with ``-f`` (``canarymesh.api.loader``), builds the mesh with
deterministic local ports (``mesh.build.SequentialPorts``), and prints ``xds.generate``'s
snapshot for ``--proxy`` (a pod such as ``productpage-v1-0``, a Deployment such as
``reviews-v1`` meaning its first replica, or a gateway such as ``istio-ingressgateway``). With
``--bootstrap`` it prints a complete static Envoy config instead, with workload certificates
from a throwaway local CA, that ``envoy --mode validate -c FILE`` accepts.

Exit codes: 0 on success, 1 when the manifests have errors or the proxy is unknown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

import click
import yaml

from canarymesh.api.loader import load_paths
from canarymesh.cli.common import EXIT_FAILED
from canarymesh.mesh.build import build_mesh
from canarymesh.mesh.model import MeshSettings, MeshSnapshot, ProxyNode, WorkloadIdentity
from canarymesh.runtime.local.ca import LocalCA
from canarymesh.xds import names
from canarymesh.xds.bootstrap import build_static_bootstrap
from canarymesh.xds.generate import generate
from canarymesh.xds.types import EnvoyJson, JsonValue

__all__ = ["render_command"]

TYPE_KEYS = {
    names.LISTENER: "listeners",
    names.ROUTE: "routes",
    names.CLUSTER: "clusters",
    names.ENDPOINT: "endpoints",
    names.SECRET: "secrets",
}


def find_proxy(mesh: MeshSnapshot, wanted: str) -> ProxyNode:
    """A proxy by pod name, or a Deployment's first replica by the Deployment's name."""
    for proxy in mesh.proxies:
        if proxy.id == wanted:
            return proxy
    for proxy in sorted(mesh.proxies, key=lambda p: p.id):
        if proxy.workload == wanted:
            return proxy
    known = ", ".join(sorted(p.id for p in mesh.proxies)) or "none"
    raise click.ClickException(f"no proxy named {wanted!r}; known proxies: {known}")


def issue_identity(proxy: ProxyNode) -> WorkloadIdentity:
    """A certificate for the proxy from a CA that lives only as long as this command."""
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="canarymesh-render-") as state:
        ca = LocalCA.load_or_create(Path(state), now)
        identity = f"spiffe://cluster.local/ns/{proxy.namespace}/sa/{proxy.service_account}"
        cert = ca.issue(identity, now)
        return WorkloadIdentity(cert.chain_pem, cert.key_pem, ca.root_pem)


def render_document(mesh: MeshSnapshot, proxy: ProxyNode, bootstrap: bool) -> EnvoyJson:
    if bootstrap:
        proxy = dataclasses.replace(proxy, identity=issue_identity(proxy))
    snapshot = generate(mesh, proxy)
    snapshot.check_consistent()
    if bootstrap:
        return build_static_bootstrap(snapshot, proxy, mesh.settings)
    resources: dict[str, JsonValue] = {
        TYPE_KEYS[url]: list(items) for url, items in snapshot.resources if items
    }
    return {"proxy": proxy.id, "version": snapshot.version, "resources": resources}


class PlainDumper(yaml.SafeDumper):
    """No ``&id001`` anchors: the translation shares identical fragments between resources."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump(document: EnvoyJson, output: str) -> str:
    if output == "json":
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    return str(yaml.dump(document, Dumper=PlainDumper, sort_keys=True, width=100))


@click.command("render")
@click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A YAML file or a directory of them (recursive); repeat for more.",
)
@click.option("--proxy", "proxy_name", required=True, help="Pod, Deployment or gateway name.")
@click.option("--bootstrap", is_flag=True, help="A complete static Envoy config instead.")
@click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@click.option(
    "--telemetry-port",
    type=int,
    default=None,
    help="Port of a gRPC access-log server to send telemetry to (none by default).",
)
def render_command(
    paths: Sequence[Path],
    proxy_name: str,
    bootstrap: bool,
    output: str,
    telemetry_port: int | None,
) -> None:
    """Print the Envoy configuration PROXY would receive for the manifests in -f."""
    result = load_paths(list(paths))
    errors = result.diagnostics.errors
    if errors:
        for diagnostic in errors:
            click.echo(str(diagnostic), err=True)
        raise SystemExit(EXIT_FAILED)
    mesh = build_mesh(result.resources, settings=MeshSettings(telemetry_port=telemetry_port))
    try:
        proxy = find_proxy(mesh, proxy_name)
    except click.ClickException as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise SystemExit(EXIT_FAILED) from exc
    click.echo(dump(render_document(mesh, proxy, bootstrap), output), nl=False)
