"""What every local-mesh command shares: ``--state-dir``, the API client, errors as exit codes.

``--state-dir`` is accepted both by the group and by each command (``canarymesh --state-dir D up``
and ``canarymesh up --state-dir D``); the command's value wins, then the group's, then
``CANARYMESH_STATE_DIR``, then ``~/.canarymesh/default``. Both options store into ``ctx.meta``,
which click shares between a group's context and its command's.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from canarymesh.errors import CanaryMeshError
from canarymesh.runtime.local.api_client import ApiClient

__all__ = [
    "ENV_STATE_DIR",
    "EXIT_FAILED",
    "client",
    "handle_errors",
    "state_dir",
    "state_dir_option",
]

ENV_STATE_DIR = "CANARYMESH_STATE_DIR"
# Any failure, refused input included: kubectl's code, and issue 13's for bad input.
EXIT_FAILED = 1
_KEY = "canarymesh.state_dir"
P = ParamSpec("P")
R = TypeVar("R")


def _remember(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[_KEY] = value


def state_dir_option(func: Callable[P, R]) -> Callable[P, R]:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        callback=_remember,
        help=f"The mesh's state directory [env {ENV_STATE_DIR}; default ~/.canarymesh/default].",
    )(func)


def state_dir() -> Path:
    """The state directory this invocation acts on, absolute."""
    chosen = click.get_current_context().meta.get(_KEY)
    if chosen is None:
        env = os.environ.get(ENV_STATE_DIR)
        chosen = Path(env) if env else Path.home() / ".canarymesh" / "default"
    return Path(chosen).expanduser().absolute()


def client(timeout: float = 120.0) -> ApiClient:
    return ApiClient.for_state_dir(state_dir(), timeout=timeout)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print our errors as one message and exit 1, as kubectl exits for any failure (bad
    input included). ``validate`` and ``analyze`` keep their own 0/1/2 contract."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CanaryMeshError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper
