"""Entry point of the ``canarymesh`` console script: the command group and its global options."""

from __future__ import annotations

import click

from canarymesh import __version__
from canarymesh.cli.render import render_command
from canarymesh.cli.validate import analyze_command, validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Canary deployments on an Istio service mesh, locally or on Kubernetes."""


@cli.command()
def version() -> None:
    """Print the version of canarymesh."""
    click.echo(f"canarymesh {__version__}")


cli.add_command(validate_command)
cli.add_command(analyze_command)
cli.add_command(render_command)


def main() -> None:
    cli()
