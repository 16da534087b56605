"""Database pods: Bookinfo's ``mysqldb`` image played by a local MariaDB, seeded at each start.

Called by :mod:`canarymesh.runtime.local.reconcile` when a pod's image resolves to
:class:`~canarymesh.runtime.local.catalog.MariaDbRecipe`. Like the image's emptyDir volume, the
data lives only as long as the pod: :func:`prepare_mariadb` creates an empty data directory
(``mariadb-install-db``, a second or two, run off the event loop's critical path by the caller),
writes the init file that sets ``MYSQL_ROOT_PASSWORD`` and loads ratings' seed, and returns the
server's supervised process on the port ``build_mesh`` allocated for the container port.

The directory is a short one under the system temp dir, not in the state dir: MariaDB's unix
socket path must stay under about 107 bytes.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from canarymesh.errors import ConfigError
from canarymesh.mesh.model import ProxyNode
from canarymesh.runtime.local.catalog import MariaDbRecipe
from canarymesh.runtime.local.pods import PodPlan
from canarymesh.runtime.local.supervisor import ProcessSpec, TcpProbe

__all__ = ["database_workdir", "mariadb_spec", "prepare_mariadb", "remove_workdir", "seed_path"]


def seed_path(recipe: MariaDbRecipe) -> Path:
    """ratings' ``mysqldb-init.sql``, found next to the installed ``bookinfo`` package."""
    spec = importlib.util.find_spec("bookinfo")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise ConfigError("the bookinfo package is not installed: its MySQL seed is needed")
    return Path(locations[0]).parent / recipe.init_sql


def database_workdir(proxy_id: str) -> Path:
    """The pod's data directory: short (MariaDB's socket path must fit in ~107 bytes) and
    derived from the pod, so a restarted control plane finds the running server's."""
    digest = hashlib.sha256(proxy_id.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"cm-db-{digest}"


def mariadb_spec(
    recipe: MariaDbRecipe,
    plan: PodPlan,
    proxy: ProxyNode,
    log_path: Path,
    backoff: float,
    launcher: tuple[str, ...] | None = None,
    netns: str | None = None,
) -> ProcessSpec:
    """The server's process spec over :func:`database_workdir` (see :func:`prepare_mariadb`).

    In a pod network (``launcher``/``netns``) it listens on the pod's addresses on its container
    port, as the image does; on the shared network on the loopback port build_mesh allocated."""
    if plan.container_port is None or proxy.ports.app_port(plan.container_port) is None:
        raise ConfigError(f"pod {plan.name}: the database container declares no port")
    port = proxy.ports.app_port(plan.container_port) or 0
    workdir = database_workdir(plan.proxy_id)
    as_root = os.geteuid() == 0 and plan.run_as is None
    bind = "0.0.0.0" if netns is not None else "127.0.0.1"
    init = workdir / "init.sql"
    argv = recipe.argv(workdir / "data", port, workdir / "mysqld.sock", init, as_root, bind)
    return ProcessSpec(
        name=f"{plan.proxy_id}.{plan.container}",
        argv=argv,
        log_path=log_path,
        env={"PATH": os.environ.get("PATH", os.defpath)},
        probe=TcpProbe(port, netns=netns),
        launcher=launcher,
        detached=True,
        backoff_initial=backoff,
        backoff_max=10.0,
        stop_grace=10.0,
    )


async def prepare_mariadb(recipe: MariaDbRecipe, plan: PodPlan, log_path: Path) -> Path:
    """A fresh, initialised data directory for the pod (its previous one is discarded, as an
    emptyDir's is): ``mariadb-install-db``, then the init file that sets MYSQL_ROOT_PASSWORD
    and loads ratings' seed (it runs at every server start, so it is idempotent)."""
    workdir = database_workdir(plan.proxy_id)
    remove_workdir(workdir)
    workdir.mkdir(mode=0o700)
    as_root = os.geteuid() == 0
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        install = await asyncio.create_subprocess_exec(
            *recipe.install_argv(workdir / "data", as_root),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        if await install.wait() != 0:
            remove_workdir(workdir)
            raise ConfigError(f"pod {plan.name}: mariadb-install-db failed, see {log_path}")
    password = dict(plan.env).get("MYSQL_ROOT_PASSWORD", "password")
    (workdir / "init.sql").write_text(recipe.init_script(password, seed_path(recipe).read_text()))
    if as_root and plan.run_as is not None:
        # The pod's volume belongs to its user (Kubernetes' fsGroup), and so does the server.
        _chown_tree(workdir, *plan.run_as)
    return workdir


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.chown(os.path.join(directory, name), uid, gid)


def remove_workdir(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
