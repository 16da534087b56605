"""ratings v2 against real databases: MariaDB (session fixture) and, where installed, mongod.

The MySQL cases reproduce the original's statuses exactly, including the odd one: a failed
connection answers **200** with an error body, while a failed SELECT answers 500.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mariadb import MariaDB
from tests.support.processes import Service, free_port, start_service, wait_for_port

pytestmark = pytest.mark.integration

MODULE = "bookinfo.ratings"
SEED = Path(__file__).parents[2] / "src/bookinfo/ratings"
CONNECT_ERROR = b'{"error":"could not connect to ratings database"}'


def get(service: Service, path: str, method: str = "GET", timeout: float = 5) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    try:
        conn.request(method, path, body=b'{"Reviewer1":1}' if method == "POST" else None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def mysql_env(db: MariaDB, **changes: str) -> dict[str, str]:
    env = {
        "SERVICE_VERSION": "v2",
        "DB_TYPE": "mysql",
        "MYSQL_DB_HOST": "127.0.0.1",
        "MYSQL_DB_PORT": str(db.port),
        "MYSQL_DB_USER": "root",
        "MYSQL_DB_PASSWORD": "password",
    }
    return env | changes


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ratings-db-logs")


@pytest.fixture(scope="module")
def ratings_mysql(mariadb: MariaDB, logs: Path) -> Iterator[Service]:
    service = start_service(MODULE, logs, mysql_env(mariadb))
    yield service
    service.stop()


def test_mysql_round_trip_reads_the_seed(ratings_mysql: Service) -> None:
    assert get(ratings_mysql, "/ratings/0") == (
        200,
        b'{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}',
    )
    # The product id plays no part in the query, as in the original.
    assert (
        get(ratings_mysql, "/ratings/9")[1] == b'{"id":9,"ratings":{"Reviewer1":5,"Reviewer2":4}}'
    )


def test_mysql_is_read_on_every_request(mariadb: MariaDB, ratings_mysql: Service) -> None:
    mariadb.run_sql("UPDATE test.ratings SET Rating = 1 WHERE ReviewID = 2")
    try:
        assert get(ratings_mysql, "/ratings/0")[1] == (
            b'{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":1}}'
        )
    finally:
        mariadb.run_sql((SEED / "mysqldb-init.sql").read_text())


def test_post_is_not_implemented_on_v2(ratings_mysql: Service) -> None:
    assert get(ratings_mysql, "/ratings/0", "POST") == (
        501,
        b'{"error":"Post not implemented for database backed ratings"}',
    )
    assert get(ratings_mysql, "/ratings/abc") == (
        400,
        b'{"error":"please provide numeric product ID"}',
    )


def test_mysql_dropped_table_is_500_could_not_perform_select(
    mariadb: MariaDB, ratings_mysql: Service
) -> None:
    mariadb.run_sql("DROP TABLE test.ratings")
    try:
        assert get(ratings_mysql, "/ratings/0") == (500, b'{"error":"could not perform select"}')
    finally:
        mariadb.run_sql((SEED / "mysqldb-init.sql").read_text())
    assert get(ratings_mysql, "/ratings/0")[0] == 200


@pytest.mark.parametrize(
    "change",
    [{"MYSQL_DB_PASSWORD": "wrong"}, {"MYSQL_DB_PORT": "0"}],
    ids=["wrong-password", "refused"],
)
def test_mysql_connect_failure_is_200_with_the_error_body(
    mariadb: MariaDB, logs: Path, change: dict[str, str]
) -> None:
    if change.get("MYSQL_DB_PORT") == "0":
        change = {"MYSQL_DB_PORT": str(free_port())}
    service = start_service(MODULE, logs, mysql_env(mariadb, **change))
    try:
        started = time.monotonic()
        assert get(service, "/ratings/0") == (200, CONNECT_ERROR)
        assert time.monotonic() - started < 2.5
    finally:
        service.stop()


def test_mongodb_unreachable_is_500_within_the_short_timeout(logs: Path) -> None:
    env = {
        "SERVICE_VERSION": "v2",
        "MONGO_DB_URL": f"mongodb://127.0.0.1:{free_port()}/test",
        "RATINGS_DB_TIMEOUT_SECONDS": "0.5",
    }
    service = start_service(MODULE, logs, env)
    try:
        started = time.monotonic()
        assert get(service, "/ratings/0") == (500, CONNECT_ERROR)
        assert time.monotonic() - started < 2
    finally:
        service.stop()


@pytest.fixture(scope="module")
def mongod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = shutil.which("mongod")
    if binary is None:
        reason = "mongod is not installed, so the MongoDB round trip cannot run here"
        print(reason)
        pytest.skip(reason)
    data, port = tmp_path_factory.mktemp("mongod"), free_port()
    log = (data / "mongod.log").open("wb")
    proc = subprocess.Popen(
        [binary, "--dbpath", str(data), "--port", str(port), "--bind_ip", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        wait_for_port(port, timeout=30, proc=proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def test_mongodb_round_trip_reads_the_seed(mongod: int, logs: Path) -> None:
    from pymongo import MongoClient

    documents = [json.loads(line) for line in (SEED / "mongodb-seed.json").read_text().splitlines()]
    with MongoClient("127.0.0.1", mongod, serverSelectionTimeoutMS=5000) as client:
        client["test"]["ratings"].insert_many(documents)
    env = {"SERVICE_VERSION": "v2", "MONGO_DB_URL": f"mongodb://127.0.0.1:{mongod}/test"}
    service = start_service(MODULE, logs, env)
    try:
        assert get(service, "/ratings/0") == (
            200,
            b'{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}',
        )
        with MongoClient("127.0.0.1", mongod, serverSelectionTimeoutMS=5000) as client:
            client["test"]["ratings"].drop()
        assert get(service, "/ratings/0") == (
            200,
            b'{"id":0,"ratings":{"Reviewer1":0,"Reviewer2":0}}',
        )
    finally:
        service.stop()
