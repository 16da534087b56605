"""``canarymesh rollout start|get|status|list|history|simulate|promote|abort|pause|resume``.

Thin: ``start`` validates a Canary (ours, or Flagger's translated with a warning per field that
does not map; an Argo Rollout is applied as ``apply`` applies it, its canary revision a new
rollout), stamps it with a new rollout id and applies it; the canary controller
(:mod:`canarymesh.controller.local`, started here when needed) picks it up. ``get`` (and its
kubectl-argo-rollouts name ``status``) renders the pure view of :mod:`canarymesh.views.rollout`
with rich (:mod:`.rollout_render`), or as JSON or YAML; the commands drop a manual command in the
rollout store for the controller to take. ``simulate`` (:mod:`canarymesh.cli.simulate`) plays a
Canary against simulated traffic, many times, without a mesh.
"""

from __future__ import annotations

import datetime
import json
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml
from rich.console import Console
from rich.live import Live
from rich.text import Text

from canarymesh.api.canary import ROLLOUT_ID_ANNOTATION, Canary
from canarymesh.cli.apply import apply_inputs
from canarymesh.cli.canary_documents import canary_documents
from canarymesh.cli.common import client, handle_errors, state_dir, state_dir_option
from canarymesh.cli.inputs import has_argo
from canarymesh.cli.rollout_render import render
from canarymesh.cli.simulate import simulate_command
from canarymesh.errors import ConfigError
from canarymesh.ports import state_of
from canarymesh.rollout.phases import TERMINAL
from canarymesh.runtime.local.api_models import CANARY_KIND, DocumentText
from canarymesh.runtime.local.controller_process import ensure_running
from canarymesh.runtime.local.rollout_store import RolloutStore
from canarymesh.views.rollout import RolloutView, rollout_view

if TYPE_CHECKING:
    from canarymesh.runtime.kube.backend import KubeRolloutBackend

__all__ = ["rollout_group", "start_rollout", "view_of"]

_namespace = click.option("-n", "--namespace", default=None, help="The Canary's namespace.")
_context = click.option(
    "--context", default=None, help="A kubeconfig context: act on that cluster's Canaries."
)


def _store(context: str | None) -> RolloutStore | KubeRolloutBackend:
    """Where rollouts are read and commands sent: the local mesh, or a cluster."""
    if context is None:
        return RolloutStore(state_dir())
    return _kube_backend(context)


def _kube_backend(context: str) -> KubeRolloutBackend:
    # Imported on use: the kubernetes client costs every local rollout command ~0.5 s to import.
    from canarymesh.runtime.kube.backend import KubeRolloutBackend

    return KubeRolloutBackend.for_context(context)


@click.group("rollout")
def rollout_group() -> None:
    """Start, watch and steer canary rollouts on the local mesh (or a cluster: --context)."""


# --- start ------------------------------------------------------------------------------------


def start_rollout(
    text: str, source: str, namespace: str | None, context: str | None = None
) -> list[str]:
    """Apply the Canaries of ``text`` as new rollouts; returns their ``namespace/name`` keys.

    An Argo Rollout is applied as ``apply`` does, its canary revision stamped as a new rollout
    (``kubectl argo rollouts retry`` when the revision already rolled)."""
    if has_argo(text):
        return _start_argo(text, source, namespace, context)
    docs, warnings = canary_documents(text, source)
    for line in warnings:
        click.echo(line, err=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    keys = []
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        meta.setdefault("annotations", {})[ROLLOUT_ID_ANNOTATION] = (
            f"{stamp}-{secrets.token_hex(3)}"
        )
        keys.append(f"{meta.get('namespace') or namespace or 'default'}/{meta['name']}")
    if context is not None:
        return _kube_backend(context).start(docs, namespace)
    text = yaml.safe_dump_all(docs, sort_keys=False)
    client().apply([DocumentText(source=source, text=text, namespace=namespace)])
    ensure_running(state_dir())
    return keys


def _start_argo(text: str, source: str, namespace: str | None, context: str | None) -> list[str]:
    if context is not None:
        raise ConfigError(
            f"{source}: an Argo Rollout runs on the local mesh; on a cluster, apply it for Argo "
            "Rollouts with kubectl"
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    document = DocumentText(source=source, text=text, namespace=namespace)
    translated = apply_inputs([document], stamp=f"{stamp}-{secrets.token_hex(3)}")
    if not translated.canaries:
        raise ConfigError(f"{source}: no canary to start: the Rollout's template is its stable "
                          "revision; change spec.template")  # fmt: skip
    ensure_running(state_dir())
    return translated.canaries


@rollout_group.command("start")
@click.option("-f", "--filename", "path", required=True, type=click.Path(path_type=Path))
@_namespace
@_context
@state_dir_option
@handle_errors
def start_command(path: Path, namespace: str | None, context: str | None) -> None:
    """Validate and apply a Canary; the controller starts a new rollout of it."""
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    for key in start_rollout(text, str(path), namespace, context):
        click.echo(f"canary.canarymesh.io/{key.split('/')[1]} started ({key})")
        namespace_of, name = key.split("/", 1)
        # The command must find the rollout: its namespace unless it is the default one.
        where = "" if namespace_of == "default" else f" -n {namespace_of}"
        where += f" --watch --context {context}" if context else " --watch"
        click.echo(f"  follow it: canarymesh rollout get {name}{where}")


# --- reading ------------------------------------------------------------------------------


def resolve(name: str, namespace: str | None, context: str | None = None) -> str:
    """The ``namespace/name`` key of a rollout named ``name`` (unique across namespaces)."""
    if "/" in name:
        return name
    if namespace is not None:
        return f"{namespace}/{name}"
    found = [k for k in _store(context).names() if k.split("/")[1] == name]
    if len(found) == 1:
        return found[0]
    if not found:
        return f"default/{name}"
    raise ConfigError(f"rollout {name} exists in several namespaces: {', '.join(found)}; use -n")


def view_of(key: str, context: str | None = None) -> RolloutView | None:
    """The view of rollout ``key`` now, or None before the controller's first decision."""
    store = _store(context)
    state = state_of(store.load(key))
    if state is None:
        return None
    if not isinstance(store, RolloutStore):
        return rollout_view(state, Canary.model_validate(store.spec(key)))
    namespace, name = key.split("/")
    items = client().resources([CANARY_KIND], namespace, name)
    if not items:
        raise ConfigError(f"no Canary {key} is applied")
    return rollout_view(state, Canary.model_validate(items[0].get("spec") or {}))


def _get(name: str, namespace: str | None, watch: bool, output: str, context: str | None) -> None:
    key = resolve(name, namespace, context)
    view = view_of(key, context)
    if output in ("json", "yaml"):
        data = view.to_json() if view else {"name": key, "phase": None}
        if output == "json":
            click.echo(json.dumps(data, indent=2))
        else:
            click.echo(yaml.safe_dump(data, sort_keys=False, width=100), nl=False)
        return
    if not watch:
        Console().print(render(view) if view else f"{key}: waiting for the controller")
        return
    with Live(Text(f"{key}: waiting for the controller"), refresh_per_second=2) as live:
        while view is None or view.phase not in {p.value for p in TERMINAL}:
            time.sleep(1.0)
            view = view_of(key, context)
            if view is not None:
                live.update(render(view))


_OUTPUT = click.option(
    "-o", "--output", type=click.Choice(["text", "json", "yaml"]), default="text",
    help="text (tables), or the view as JSON or YAML (what the dashboard serves).",
)  # fmt: skip


@rollout_group.command("get")
@click.argument("name")
@_namespace
@click.option("-w", "--watch", is_flag=True, help="Refresh until the rollout ends.")
@_OUTPUT
@_context
@state_dir_option
@handle_errors
def get_command(
    name: str, namespace: str | None, watch: bool, output: str, context: str | None
) -> None:
    """Show a rollout: steps, weights, what the plan can see, each metric's verdict with its
    evidence, the decision log."""
    _get(name, namespace, watch, output, context)


@rollout_group.command("status")
@click.argument("name")
@_namespace
@click.option("-w", "--watch", is_flag=True, help="Refresh until the rollout ends.")
@_OUTPUT
@_context
@state_dir_option
@handle_errors
def status_command(
    name: str, namespace: str | None, watch: bool, output: str, context: str | None
) -> None:
    """Show a rollout (the same as get): its verdicts explained, what the plan can see."""
    _get(name, namespace, watch, output, context)


@rollout_group.command("list")
@_context
@state_dir_option
@handle_errors
def list_command(context: str | None) -> None:
    """Every rollout of the mesh with its phase, weight and last reason."""
    store = _store(context)
    click.echo(f"{'NAMESPACE':<12} {'NAME':<16} {'PHASE':<12} {'CANARY':>6}  MESSAGE")
    for key in store.names():
        state = state_of(store.load(key))
        if state is not None:
            namespace, name = key.split("/")
            click.echo(f"{namespace:<12} {name:<16} {state.phase.value:<12} "
                       f"{state.weights.canary:>5}%  {state.message}")  # fmt: skip


@rollout_group.command("history")
@click.argument("name")
@_namespace
@_context
@state_dir_option
@handle_errors
def history_command(name: str, namespace: str | None, context: str | None) -> None:
    """Every rollout of a Canary, oldest first, with its decisions."""
    key = resolve(name, namespace, context)
    records = _store(context).history(key)
    if not records:
        raise ConfigError(f"no rollout of {key} yet")
    for record in records:
        state = state_of(record)
        assert state is not None
        click.echo(f"rollout {record.get('rolloutId')}  {state.phase.value}  "
                   f"started {state.started_at:%Y-%m-%d %H:%M:%S}Z")  # fmt: skip
        for entry in state.history:
            click.echo(f"  {entry.at:%H:%M:%S}  {entry.phase.value:<12} {entry.reason}")


def _command(name: str, namespace: str | None, command: str, context: str | None) -> None:
    key = resolve(name, namespace, context)
    store = _store(context)
    if store.load(key) is None:
        raise ConfigError(f"no rollout of {key}: start one with `canarymesh rollout start -f`")
    store.send_command(key, command)
    if context is None:
        ensure_running(state_dir())
    click.echo(f"rollout {key}: {command} sent")


def _make(command: str, help_text: str) -> click.Command:
    @click.command(command, help=help_text)
    @click.argument("name")
    @_namespace
    @_context
    @state_dir_option
    @handle_errors
    def run(name: str, namespace: str | None, context: str | None) -> None:
        _command(name, namespace, command, context)

    return run


for _name, _help in (
    ("promote", "Skip the remaining steps and promote the canary now."),
    ("abort", "Roll back now: every request to the stable version."),
    ("pause", "Hold at the current step (analysis goes on; a failing canary still rolls back)."),
    ("resume", "Go on after a pause (also passes a pause step without duration)."),
):
    rollout_group.add_command(_make(_name, _help))

rollout_group.add_command(simulate_command)
