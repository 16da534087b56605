"""``canarymesh apply -f`` and ``canarymesh delete -f``: change the resources of a local mesh.

The input is validated here first with the api package, as ``canarymesh validate`` does: any
error prints every diagnostic and exits 2 before the control plane hears of it, so nothing
changes; warnings are printed and the input is applied. The control plane then checks that the
whole set can run (images, secrets) and refuses it whole otherwise. Output lines follow kubectl:
``deployment.apps/reviews-v1 created``, ``... configured``, ``... unchanged``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from canarymesh.api.loader import LoadResult, expand_paths, load_paths, load_text
from canarymesh.cli.common import client, handle_errors, state_dir_option
from canarymesh.cli.validate import EXIT_ERRORS
from canarymesh.runtime.local.api_models import DocumentText

__all__ = ["apply_command", "delete_command", "read_inputs"]


def read_inputs(
    paths: Sequence[Path], namespace: str | None = None
) -> tuple[list[DocumentText], LoadResult]:
    """The texts to send and their validation, ``-`` being standard input."""
    files = [p for p in dict.fromkeys(paths) if str(p) != "-"]
    found, _ = expand_paths(files)
    texts = [
        DocumentText(source=str(f), text=f.read_text(encoding="utf-8"), namespace=namespace)
        for f in found
    ]
    result = load_paths(files) if files else LoadResult((), load_text("", "-").diagnostics)
    if any(str(p) == "-" for p in paths):
        stdin = sys.stdin.read()
        texts.append(DocumentText(source="<stdin>", text=stdin, namespace=namespace))
        result = result + load_text(stdin, "<stdin>")
    return texts, result


def _change(paths: tuple[Path, ...], namespace: str | None, wait: bool, delete: bool) -> None:
    texts, result = read_inputs(paths, namespace)
    diagnostics = result.diagnostics
    if diagnostics.has_errors:
        for line in diagnostics.lines():
            click.echo(line, err=True)
        click.echo(f"error: nothing {'deleted' if delete else 'applied'}: fix the errors", err=True)
        raise SystemExit(EXIT_ERRORS)
    for line in diagnostics.lines():
        click.echo(line, err=True)
    api = client()
    change = api.delete if delete else api.apply
    for line in change(texts, wait=wait, timeout=60.0).lines:
        click.echo(line)


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


@click.command("apply")
@_files
@_namespace
@_wait
@state_dir_option
@handle_errors
def apply_command(paths: tuple[Path, ...], namespace: str | None, wait: bool) -> None:
    """Create or update resources from files (validated first; an error applies nothing)."""
    _change(paths, namespace, wait, delete=False)


@click.command("delete")
@_files
@_namespace
@_wait
@state_dir_option
@handle_errors
def delete_command(paths: tuple[Path, ...], namespace: str | None, wait: bool) -> None:
    """Delete the resources named in files."""
    _change(paths, namespace, wait, delete=True)
