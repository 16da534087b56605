"""``canarymesh apply -f`` and ``canarymesh delete -f``: change the resources of a local mesh.

The input is validated here first with the api package, as ``canarymesh validate`` does: any
error prints every diagnostic and exits 1 before the control plane hears of it, so nothing
changes; warnings are printed and the input is applied. Other tools' kinds (Argo Rollouts'
Rollout and analysis templates, Flagger's Canary and AlertProvider) are translated first
(:mod:`canarymesh.cli.inputs`), and what they become is validated the same way. The control
plane then checks that the whole set can run (images, secrets) and refuses it whole otherwise.
Output lines follow kubectl: ``deployment.apps/reviews-v1 created``, ``... configured``,
``... unchanged``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click

from canarymesh.api.diagnostics import Diagnostics
from canarymesh.api.loader import LoadResult, load_inputs, load_text
from canarymesh.cli.common import EXIT_FAILED, client, handle_errors, state_dir_option
from canarymesh.cli.config_canary import config_canary_document, parse_percent
from canarymesh.cli.inputs import (
    Translated,
    deletions,
    in_progress,
    is_translated,
    translate_inputs,
)
from canarymesh.cli.validate import read_inputs as read_validate_inputs
from canarymesh.runtime.local.api_models import DocumentText

__all__ = ["apply_command", "apply_inputs", "delete_command", "read_inputs"]


def read_inputs(
    paths: Sequence[Path], namespace: str | None = None
) -> tuple[list[DocumentText], LoadResult]:
    """The texts to send and their validation, ``-`` being standard input; each input is read
    once (bounded, strictly UTF-8), so what is sent is what was validated."""
    inputs, missing = read_validate_inputs(paths)
    result = load_inputs(inputs)
    texts = [
        DocumentText(source=item.name, text=item.text, namespace=namespace)
        for item in inputs
        if item.problem is None
    ]
    return texts, LoadResult(result.resources, result.diagnostics + missing)


def _refuse(diagnostics: Diagnostics, delete: bool) -> None:
    if diagnostics.has_errors:
        for line in diagnostics.lines():
            click.echo(line, err=True)
        click.echo(f"error: nothing {'deleted' if delete else 'applied'}: fix the errors", err=True)
        raise SystemExit(EXIT_FAILED)


def _change(
    paths: tuple[Path, ...],
    namespace: str | None,
    wait: bool,
    delete: bool,
    canary: str | None = None,
    host: str | None = None,
) -> None:
    texts, result = read_inputs(paths, namespace)
    # Kinds translated below are not "skipped", whatever the generic loader says of them.
    shown = Diagnostics(tuple(
        d for d in result.diagnostics
        if not (d.code == "CM0012" and is_translated(*_kind_of(d.reason)))
    ))  # fmt: skip
    _refuse(shown, delete)
    for line in shown.lines():
        click.echo(line, err=True)
    if delete:
        texts += deletions(texts, client)
        for line in client().delete(texts, wait=wait, timeout=60.0).lines:
            click.echo(line)
        return
    if canary is not None:
        texts = [_as_config_canary(texts, canary, namespace, host)]
    apply_inputs(texts, wait=wait)


def apply_inputs(
    texts: list[DocumentText], *, wait: bool = False, stamp: str | None = None
) -> Translated:
    """Translate other tools' kinds, validate what they became, apply it all as one change,
    then prune old revisions; kubectl's lines and the Rollouts' summaries are printed."""
    translated = translate_inputs(texts, client, stamp=stamp, in_progress=in_progress)
    for line in translated.warnings:
        click.echo(line, err=True)
    made = Diagnostics(())
    for text in translated.generated:
        made = made + load_text(text.text, text.source).diagnostics
    _refuse(made, delete=False)
    api = client()
    for line in api.apply(translated.texts, wait=wait, timeout=60.0).lines:
        click.echo(line)
    for line in translated.summaries:
        click.echo(line)
    if translated.prune:
        for line in api.delete(translated.prune, timeout=60.0).lines:
            click.echo(line)
    return translated


def _kind_of(reason: str) -> tuple[str, str]:
    """(apiVersion, kind) of a CM0012 diagnostic: ``Rollout (argoproj.io/v1alpha1) has...``."""
    kind, _, rest = reason.partition(" (")
    return rest.partition(")")[0], kind


_files = click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A YAML file, a directory of them, or - for standard input; repeatable.",
)
_namespace = click.option(
    "-n", "--namespace", default=None, help="Namespace of objects that name none [default]."
)
_wait = click.option(
    "--wait", is_flag=True, help="Return once every pod is ready and every proxy ACKed."
)


def _as_config_canary(
    texts: list[DocumentText], canary: str, namespace: str | None, host: str | None
) -> DocumentText:
    document = config_canary_document(texts, parse_percent(canary), namespace, host)
    checked = load_text(json.dumps(document), "<config canary>").diagnostics
    if checked.has_errors:
        for line in checked.lines():
            click.echo(line, err=True)
        click.echo("error: nothing applied: the config canary is not valid", err=True)
        raise SystemExit(EXIT_FAILED)
    return DocumentText(text=json.dumps(document), source="<config canary>", namespace=namespace)


@click.command("apply")
@_files
@_namespace
@_wait
@click.option(
    "--canary",
    "canary",
    metavar="PERCENT",
    default=None,
    help="Roll the files' VirtualService/DestinationRule/AuthorizationPolicy changes out as a"
    " config canary: first to PERCENT (e.g. 10%) of the target's client sidecars, judged, then"
    " wider, promoted or rolled back by the canary controller.",
)
@click.option(
    "--host",
    default=None,
    help="With --canary: the service whose requests are judged [the one the files route].",
)
@state_dir_option
@handle_errors
def apply_command(
    paths: tuple[Path, ...],
    namespace: str | None,
    wait: bool,
    canary: str | None,
    host: str | None,
) -> None:
    """Create or update resources from files (validated first; an error applies nothing)."""
    if host is not None and canary is None:
        raise click.UsageError("--host goes with --canary")
    _change(paths, namespace, wait, delete=False, canary=canary, host=host)


@click.command("delete")
@_files
@_namespace
@_wait
@state_dir_option
@handle_errors
def delete_command(paths: tuple[Path, ...], namespace: str | None, wait: bool) -> None:
    """Delete the resources named in files."""
    _change(paths, namespace, wait, delete=True)
