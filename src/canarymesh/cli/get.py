"""``canarymesh get``, ``describe`` and ``logs``: read a local mesh as kubectl reads a cluster.

``get pods`` prints kubectl's columns (NAME READY STATUS RESTARTS AGE) from the control plane's
pod table; other kinds print the applied documents, as tables or ``-o yaml|json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, cast

import click
import yaml

from canarymesh.cli.common import client, handle_errors, state_dir_option
from canarymesh.errors import ConfigError

if TYPE_CHECKING:
    from canarymesh.runtime.local.api_models import Pod

__all__ = ["describe_command", "get_command", "logs_command"]

Doc = dict[str, object]
Row = list[str]
_ISTIO = "networking.istio.io"
_SECURITY = "security.istio.io"
_GATEWAY_API = "gateway.networking.k8s.io"
# kubectl's names and short names -> the store's qualified kind.
KINDS: dict[str, str] = {}
for _names, _qualified in (
    (("deployments", "deployment", "deploy"), "deployment.apps"),
    (("services", "service", "svc"), "service"),
    (("serviceaccounts", "serviceaccount", "sa"), "serviceaccount"),
    (("namespaces", "namespace", "ns"), "namespace"),
    (("secrets", "secret"), "secret"),
    (("configmaps", "configmap", "cm"), "configmap"),
    (("virtualservices", "virtualservice", "vs"), f"virtualservice.{_ISTIO}"),
    (("destinationrules", "destinationrule", "dr"), f"destinationrule.{_ISTIO}"),
    (("gateways", "gateway", "gw"), f"gateway.{_ISTIO}"),
    (("serviceentries", "serviceentry", "se"), f"serviceentry.{_ISTIO}"),
    (("sidecars", "sidecar"), f"sidecar.{_ISTIO}"),
    (("peerauthentications", "peerauthentication", "pa"), f"peerauthentication.{_SECURITY}"),
    (("authorizationpolicies", "authorizationpolicy", "ap"), f"authorizationpolicy.{_SECURITY}"),
    (("httproutes", "httproute"), f"httproute.{_GATEWAY_API}"),
    (("gateways.gateway.networking.k8s.io",), f"gateway.{_GATEWAY_API}"),
    (("canaries", "canary"), "canary.canarymesh.io"),
):
    for _name in _names:
        KINDS[_name] = _qualified
POD_KINDS = ("pods", "pod", "po")


def _kind(name: str) -> str:
    lowered = name.lower()
    if lowered in KINDS:
        return KINDS[lowered]
    if lowered in KINDS.values():
        return lowered
    known = ", ".join(sorted({"pods", *(k for k in KINDS if k.endswith("s"))}))
    raise ConfigError(f'the server doesn\'t have a resource type "{name}" (known: {known})')


def age(seconds: float) -> str:
    """kubectl's ages (``HumanDuration``): 45s, 3m10s, 25m, 5h, 3d."""
    total = int(seconds)
    if total < 120:
        return f"{total}s"
    minutes = total // 60
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def table(rows: Sequence[Row]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    )


def _spec(doc: Doc) -> Doc:
    spec = doc.get("spec")
    return spec if isinstance(spec, dict) else {}


def _meta(doc: Doc) -> Doc:
    meta = doc.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _service_columns(doc: Doc) -> Row:
    ports = cast(list[Doc], _spec(doc).get("ports") or [])
    shown = ",".join(
        f"{p.get('port')}" + (f":{p['nodePort']}" if p.get("nodePort") else "")
        + f"/{p.get('protocol') or 'TCP'}"
        for p in ports
    )  # fmt: skip
    status = doc.get("status")
    balancer = cast(Doc, status.get("loadBalancer", {})) if isinstance(status, dict) else {}
    ips = [str(i.get("ip")) for i in cast(list[Doc], balancer.get("ingress", []))]
    kind = str(_spec(doc).get("type") or "ClusterIP")
    cluster_ip = str(_spec(doc).get("clusterIP") or "<none>")
    return [kind, cluster_ip, ",".join(ips) or "<none>", shown or "<none>"]


def _vs_columns(doc: Doc) -> Row:
    spec = _spec(doc)
    gateways = cast(list[str], spec.get("gateways") or [])
    return [json.dumps(gateways), json.dumps(spec.get("hosts") or [])]


def _replicas(doc: Doc) -> Row:
    return [str(_spec(doc).get("replicas", 1))]


COLUMNS: dict[str, tuple[Row, Callable[[Doc], Row]]] = {
    "service": (["TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)"], _service_columns),
    f"virtualservice.{_ISTIO}": (["GATEWAYS", "HOSTS"], _vs_columns),
    f"destinationrule.{_ISTIO}": (["HOST"], lambda d: [str(_spec(d).get("host", ""))]),
    "deployment.apps": (["REPLICAS"], _replicas),
    "secret": (["TYPE"], lambda d: [str(d.get("type") or "Opaque")]),
}


def _pods_output(
    pods: Sequence[Pod], name: str | None, namespace: str | None, output: str | None
) -> str:
    chosen = [p for p in pods if namespace in (None, p.namespace) and name in (None, p.name)]
    if name is not None and not chosen:
        raise ConfigError(f'pods "{name}" not found')
    if output == "json":
        return json.dumps({"items": [_pod_json(p) for p in chosen]}, indent=2)
    if output == "yaml":
        return yaml.safe_dump({"items": [_pod_json(p) for p in chosen]}, sort_keys=False)
    if not chosen:
        return f"No resources found in {namespace or 'any'} namespace."
    header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    # kubectl's wide columns; on the shared network (no pod IPs) the loopback ports instead.
    shared = any(not pod.ip for pod in chosen)
    if output == "wide":
        header += ["IP", "NODE"] + (["ADMIN", "APP-PORTS", "SIDECAR-PORTS"] if shared else [])
    rows: list[Row] = [(["NAMESPACE"] if namespace is None else []) + header]
    for pod in chosen:
        row = [pod.name, pod.ready, pod.status, str(pod.restarts), age(pod.age)]
        if output == "wide":
            row += [pod.ip or "<none>", pod.node or "local"]
            if shared:
                ports = pod.ports
                row += [str(ports.admin), _ports(ports.app), _ports(ports.inbound)]
        rows.append(([pod.namespace] if namespace is None else []) + row)
    return table(rows)


def _pod_json(pod: Pod) -> dict[str, object]:
    return pod.model_dump(mode="json")


def _ports(mapping: Mapping[int, int]) -> str:
    return ",".join(f"{k}->{v}" for k, v in mapping.items())


def _docs_output(kind: str, docs: list[Doc], namespace: str | None, output: str | None) -> str:
    if output == "json":
        body: object = docs[0] if len(docs) == 1 else {"kind": "List", "items": docs}
        return json.dumps(body, indent=2)
    if output == "yaml":
        if len(docs) == 1:
            return yaml.safe_dump(docs[0], sort_keys=False).rstrip()
        return yaml.safe_dump({"kind": "List", "items": docs}, sort_keys=False).rstrip()
    if not docs:
        return f"No resources found in {namespace or 'any'} namespace."
    extra, columns = COLUMNS.get(kind, ([], lambda d: []))
    rows: list[Row] = [(["NAMESPACE"] if namespace is None else []) + ["NAME", *extra]]
    for doc in docs:
        meta = _meta(doc)
        row = [str(meta.get("name")), *columns(doc)]
        rows.append(([str(meta.get("namespace", ""))] if namespace is None else []) + row)
    return table(rows)


_output = click.option("-o", "--output", type=click.Choice(["yaml", "json", "wide"]), default=None)
_ns = click.option("-n", "--namespace", default="default", show_default=True)
_all = click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")


@click.command("get")
@click.argument("kind")
@click.argument("name", required=False)
@_ns
@_all
@_output
@state_dir_option
@handle_errors
def get_command(
    kind: str, name: str | None, namespace: str, all_namespaces: bool, output: str | None
) -> None:
    """List resources of a kind (pods, deployments, services, vs, dr, gw, ...)."""
    chosen_ns = None if all_namespaces else namespace
    api = client()
    if kind.lower() in POD_KINDS:
        click.echo(_pods_output(api.pods(), name, chosen_ns, output))
        return
    qualified = _kind(kind)
    docs = list(api.resources([qualified], chosen_ns, name))
    if name is not None and not docs:
        raise ConfigError(f'{qualified} "{name}" not found')
    click.echo(_docs_output(qualified, docs, chosen_ns, output))


@click.command("describe")
@click.argument("kind")
@click.argument("name")
@_ns
@state_dir_option
@handle_errors
def describe_command(kind: str, name: str, namespace: str) -> None:
    """Show one resource in full (for a pod: containers, pids, restarts, ports)."""
    api = client()
    if kind.lower() in POD_KINDS:
        found = [p for p in api.pods() if p.name == name and p.namespace == namespace]
        if not found:
            raise ConfigError(f'pods "{name}" not found')
        click.echo(yaml.safe_dump(_pod_json(found[0]), sort_keys=False).rstrip())
        return
    qualified = _kind(kind)
    docs = list(api.resources([qualified], namespace, name))
    if not docs:
        raise ConfigError(f'{qualified} "{name}" not found')
    click.echo(f"Name:       {name}\nNamespace:  {namespace}\nKind:       {qualified}")
    click.echo(yaml.safe_dump(docs[0], sort_keys=False).rstrip())


@click.command("logs")
@click.argument("pod")
@click.option(
    "-c", "--container", default=None, help="The app's container name (or app), or istio-proxy."
)
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@click.option("-n", "--namespace", default=None, help="The pod's namespace (when ambiguous).")
@state_dir_option
@handle_errors
def logs_command(pod: str, container: str | None, tail: int | None, namespace: str | None) -> None:
    """Print the log of a pod's container (the app by default)."""
    click.echo(client().logs(pod, container, tail, namespace), nl=False)
