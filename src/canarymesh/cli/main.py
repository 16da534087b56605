"""Entry point of the ``canarymesh`` console script: the command group and its global options."""

from __future__ import annotations

import click

from canarymesh import __version__
from canarymesh.cli.apply import apply_command, delete_command
from canarymesh.cli.common import state_dir_option
from canarymesh.cli.get import describe_command, get_command, logs_command
from canarymesh.cli.mesh import dashboard_command, down_command, status_command, up_command
from canarymesh.cli.proxy import proxy_config_command, proxy_status_command
from canarymesh.cli.render import render_command
from canarymesh.cli.validate import analyze_command, validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@state_dir_option
def cli() -> None:
    """Canary deployments on an Istio service mesh, locally or on Kubernetes."""


@cli.command()
def version() -> None:
    """Print the version of canarymesh."""
    click.echo(f"canarymesh {__version__}")


cli.add_command(validate_command)
cli.add_command(analyze_command)
cli.add_command(render_command)
for _command in (
    up_command,
    down_command,
    status_command,
    dashboard_command,
    apply_command,
    delete_command,
    get_command,
    describe_command,
    logs_command,
    proxy_status_command,
    proxy_config_command,
):
    cli.add_command(_command)


def main() -> None:
    cli()
