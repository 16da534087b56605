"""``canarymesh validate`` and ``canarymesh analyze``: check manifests before applying them.

Shell: reads the files named with ``-f``, calls :func:`canarymesh.api.loader.load_paths` (YAML,
schema and per-object validation) and, for ``analyze``, :func:`canarymesh.api.analyze.analyze`
(cross-object references), then prints one line per diagnostic (or JSON with ``-o json``).

Exit codes: 0 when clean (warnings and info are printed but do not fail), 1 when
``--fail-on warning`` and there are warnings, 2 when there is any error (the same code as a
:class:`canarymesh.errors.ConfigError`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from canarymesh.api.analyze import analyze
from canarymesh.api.diagnostics import Diagnostics
from canarymesh.api.inputs import Input, read_path, read_stream
from canarymesh.api.loader import LoadResult, expand_paths, load_inputs

__all__ = [
    "EXIT_ERRORS",
    "EXIT_WARNINGS",
    "analyze_command",
    "read_inputs",
    "validate_command",
]

EXIT_ERRORS = 2
EXIT_WARNINGS = 1

_files = click.option(
    "-f",
    "--filename",
    "paths",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help="A YAML file, a directory of them (recursive), or - for standard input; repeatable.",
)
_output = click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: one line per diagnostic; json: for machines.",
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def render(diagnostics: Diagnostics, resources: int, output: str) -> str:
    """The command's output for ``diagnostics`` found in ``resources`` objects."""
    counts = {level: len(diagnostics.at_level(level)) for level in ("error", "warning", "info")}
    if output == "json":
        document = {
            "diagnostics": [d.to_json() for d in diagnostics],
            "summary": {"resources": resources, **counts},
        }
        return json.dumps(document, indent=2) + "\n"
    lines = diagnostics.lines()
    lines.append(
        f"checked {_plural(resources, 'resource')}: {_plural(counts['error'], 'error')}, "
        f"{_plural(counts['warning'], 'warning')}, {counts['info']} info"
    )
    return "\n".join(lines) + "\n"


def _exit_code(diagnostics: Diagnostics, fail_on: str) -> int:
    if diagnostics.has_errors:
        return EXIT_ERRORS
    if fail_on == "warning" and diagnostics.warnings:
        return EXIT_WARNINGS
    return 0


def read_inputs(paths: Sequence[Path]) -> tuple[list[Input], Diagnostics]:
    """The inputs named with ``-f`` (``-`` is standard input, as for ``kubectl apply -f -``),
    each read once, bounded; and the paths that name nothing."""
    files, missing = expand_paths([p for p in dict.fromkeys(paths) if str(p) != "-"])
    inputs = [read_path(file) for file in files]
    if any(str(p) == "-" for p in paths):
        inputs.append(read_stream(sys.stdin.buffer))
    return inputs, Diagnostics.of(missing)


def _load(paths: Sequence[Path]) -> LoadResult:
    inputs, missing = read_inputs(paths)
    result = load_inputs(inputs)
    return LoadResult(result.resources, result.diagnostics + missing)


@click.command("validate")
@_files
@_output
def validate_command(paths: tuple[Path, ...], output: str) -> None:
    """Check manifests one by one: YAML, schema, and the rules Istio enforces."""
    result = _load(paths)
    click.echo(render(result.diagnostics, len(result.resources), output), nl=False)
    raise SystemExit(_exit_code(result.diagnostics, "error"))


@click.command("analyze")
@_files
@_output
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Exit non-zero on errors only, or on warnings too (exit 1).",
)
def analyze_command(paths: tuple[Path, ...], output: str, fail_on: str) -> None:
    """Validate, then check references between manifests (subsets, hosts, gateways, mTLS)."""
    result = _load(paths)
    diagnostics = result.diagnostics + analyze(result.resources)
    click.echo(render(diagnostics, len(result.resources), output), nl=False)
    raise SystemExit(_exit_code(diagnostics, fail_on))
