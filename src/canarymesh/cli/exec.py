"""``canarymesh exec [-n NS] POD [-c CONTAINER] -- CMD ARGS...``: a command inside a pod.

As ``kubectl exec``: the command runs in the pod's network namespace (its IP, its DNS, its
sidecar's capture), as the container's user, with the container's environment and working
directory; its exit code is ``exec``'s. The control plane says where the pod is; this process
then becomes the command (``execvpe``), so stdin, stdout and signals are the command's own.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

import click

from canarymesh.cli.common import client, handle_errors, state_dir_option
from canarymesh.errors import ConfigError

if TYPE_CHECKING:
    from canarymesh.runtime.local.api_models import ExecTarget

__all__ = ["exec_argv", "exec_command"]


def exec_argv(target: ExecTarget, command: tuple[str, ...]) -> list[str]:
    """The argv that runs ``command`` as the pod's container (what ``exec`` execs)."""
    argv: list[str] = []
    netns = target.netns
    if netns:
        argv += ["ip", "netns", "exec", str(netns)]
    run_as = target.run_as
    if run_as:
        uid, gid = run_as
        argv += ["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups", "--"]
    elif netns:
        # As the app runs: root without the capabilities that would reach past the sidecar.
        from canarymesh.runtime.local.sandbox import app_launcher

        argv = list(app_launcher(str(netns), None) or ())
    return argv + list(command)


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("pod")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-n", "--namespace", default="default", show_default=True)
@click.option("-c", "--container", default=None, help="The container (pods have one app).")
@state_dir_option
@handle_errors
def exec_command(pod: str, command: tuple[str, ...], namespace: str, container: str | None) -> None:
    """Run COMMAND inside POD's network, as its container (use -- before the command)."""
    target = client().exec_target(pod, namespace, container)
    argv = exec_argv(target, command)
    if target.netns and os.geteuid() != 0:
        raise ConfigError("exec into a pod's network namespace needs root")
    program = shutil.which(argv[0], path=target.env.get("PATH"))
    if program is None:
        raise ConfigError(f"{argv[0]}: command not found")
    cwd = target.cwd or "/"
    if os.path.isdir(cwd):
        os.chdir(cwd)
    os.execve(program, argv, dict(target.env))
