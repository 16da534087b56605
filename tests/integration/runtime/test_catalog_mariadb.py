"""The catalog's ``mysqldb`` recipe launches a real MariaDB, seeded as Bookinfo's image is."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

import pymysql
import pytest

from canarymesh.runtime.local.catalog import MariaDbRecipe, resolve_image
from canarymesh.runtime.local.supervisor import ProcessSpec, Supervisor, TcpProbe
from tests.support.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = Path(__file__).parents[3] / "src" / "bookinfo" / "ratings" / "mysqldb-init.sql"


def test_mysqldb_recipe_runs_mariadb_with_the_ratings_seed_and_root_password() -> None:
    recipe = resolve_image("docker.io/istio/examples-bookinfo-mysqldb:1.20.3")
    assert isinstance(recipe, MariaDbRecipe)
    as_root = os.geteuid() == 0
    # A unix socket path must stay under ~107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="cm-maria-") as tmp:
        base = Path(tmp)
        datadir = base / "data"
        subprocess.run(
            recipe.install_argv(datadir, as_root), check=True, capture_output=True, timeout=60
        )
        init = base / "init.sql"
        init.write_text(recipe.init_script("pass'word", SEED.read_text()))
        port = free_port()
        argv = recipe.argv(datadir, port, base / "m.sock", init, as_root)

        async def scenario() -> None:
            spec = ProcessSpec("mysqldb", argv, base / "mariadbd.log", probe=TcpProbe(port))
            async with Supervisor() as sup:
                await sup.start(spec, ready_timeout=30)
                rows = await asyncio.to_thread(_ratings, port, "pass'word")
                assert rows == [(1, 5), (2, 4)]
                with pytest.raises(pymysql.err.OperationalError):
                    await asyncio.to_thread(_ratings, port, "wrong")
                assert await sup.stop("mysqldb") == 0

        asyncio.run(scenario())


def _ratings(port: int, password: str) -> list[tuple[int, int]]:
    conn = pymysql.connect(
        host="127.0.0.1", port=port, user="root", password=password, connect_timeout=5
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT ReviewID, Rating FROM test.ratings ORDER BY ReviewID")
            return [(int(a), int(b)) for a, b in cursor.fetchall()]
    finally:
        conn.close()
