"""Session fixtures for integration tests that need a real database server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mariadb import MariaDB, MariaDBUnavailable, start_mariadb

MYSQL_INIT_SQL = Path(__file__).parents[2] / "src/bookinfo/ratings/mysqldb-init.sql"


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """One MariaDB for the session, seeded with ratings' ``mysqldb-init.sql``."""
    try:
        server = start_mariadb(tmp_path_factory.mktemp("mariadb"), MYSQL_INIT_SQL)
    except MariaDBUnavailable as exc:
        # Not a skip: CI installs MariaDB, so a missing server is a broken setup.
        pytest.fail(str(exc))
    yield server
    assert server.stop() == 0, "mariadbd did not shut down cleanly"
