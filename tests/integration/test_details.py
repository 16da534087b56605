"""details v1 and v2 as real processes; v2 asks a fake books API on 127.0.0.1.

Checks every route and status with the exact bytes, the v2 mapping, the forwarded headers, and
that every way the books API can fail becomes a 400 with a message, quickly.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_books_api import (
    VOLUMES_ANSWER,
    VOLUMES_PATH,
    FakeApi,
    Reply,
    fake_books_api,
)
from tests.support.processes import Service, free_port, start_service

pytestmark = pytest.mark.integration

V1_RECORD = (
    b'{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,'
    b'"publisher":"PublisherA","language":"English","ISBN-10":"1234567890",'
    b'"ISBN-13":"123-1234567890"}'
)
NOT_NUMERIC = b'{"error":"please provide numeric product id"}'


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    service: Service,
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = 5,
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, path, headers=dict(headers or {}))
        resp = conn.getresponse()
        body = resp.read()
        received = {k.lower(): v for k, v in resp.getheaders()}
        return Answer(resp.status, received, body, time.monotonic() - started)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("details-logs")


@pytest.fixture(scope="module")
def v1(logs: Path) -> Iterator[Service]:
    service = start_service("bookinfo.details", logs)
    yield service
    service.stop()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_health(v1: Service, method: str) -> None:
    answer = call(v1, "/health", method)
    assert (answer.status, answer.body) == (200, b'{"status":"Details is healthy"}')
    assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_v1_record_is_exact(v1: Service, method: str) -> None:
    answer = call(v1, "/details/0", method)
    assert (answer.status, answer.body) == (200, V1_RECORD)
    assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize(("path", "product_id"), [("/details/42", 42), ("/details/5/", 5)])
def test_v1_echoes_the_id(v1: Service, path: str, product_id: int) -> None:
    assert call(v1, path).json()["id"] == product_id


def test_head_is_get_without_a_body(v1: Service) -> None:
    answer = call(v1, "/details/0", "HEAD")
    assert (answer.status, answer.body) == (200, b"")
    assert answer.headers["content-length"] == str(len(V1_RECORD))


@pytest.mark.parametrize("path", ["/details", "/details/", "/details/abc", "/details/12abc"])
def test_non_numeric_id_is_400(v1: Service, path: str) -> None:
    answer = call(v1, path)
    assert (answer.status, answer.body) == (400, NOT_NUMERIC)


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(v1: Service, method: str) -> None:
    answer = call(v1, "/details/0", method, timeout=2)
    assert answer.status == 405
    assert answer.seconds < 1


@pytest.mark.parametrize("path", ["/", "/detailsx", "/reviews/0"])
def test_unknown_path_is_404(v1: Service, path: str) -> None:
    assert call(v1, path).status == 404


@pytest.fixture(scope="module")
def books() -> Iterator[FakeApi]:
    with fake_books_api() as api:
        yield api


@pytest.fixture(scope="module")
def v2(logs: Path, books: FakeApi) -> Iterator[Service]:
    env = {
        "ENABLE_EXTERNAL_BOOK_SERVICE": "true",
        "BOOKS_API_BASE_URL": books.url,
        "BOOKS_API_TIMEOUT_SECONDS": "1",
    }
    service = start_service("bookinfo.details", logs, env)
    yield service
    service.stop()


@pytest.fixture
def books_reply(books: FakeApi) -> Iterator[FakeApi]:
    """The fake books API, restored to its good answer after the test."""
    books.requests.clear()
    yield books
    books.reply(VOLUMES_PATH, Reply.json(VOLUMES_ANSWER))


def test_v2_maps_the_books_api_answer(v2: Service, books_reply: FakeApi) -> None:
    answer = call(v2, "/details/3")
    assert answer.status == 200
    assert answer.body == (
        b'{"id":3,"author":"William Shakespeare","year":"2002-09-27","type":"paperback",'
        b'"pages":80,"publisher":"Dover Publications","language":"English",'
        b'"ISBN-10":"0486424618","ISBN-13":"9780486424613"}'
    )
    [request] = books_reply.requests
    assert request.path == "/books/v1/volumes?q=isbn:0486424618"


def test_v2_forwards_the_tracing_and_user_headers(v2: Service, books_reply: FakeApi) -> None:
    sent = {
        "x-request-id": "req-1",
        "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-sampled": "1",
        "end-user": "jason",
        "x-other": "kept-here",
    }
    assert call(v2, "/details/0", headers=sent).status == 200
    [request] = books_reply.requests
    received = {k: request.headers.get(k) for k in sent}
    assert received == sent | {"x-other": None}


def test_v2_non_numeric_id_never_calls_the_api(v2: Service, books_reply: FakeApi) -> None:
    assert call(v2, "/details/x").body == NOT_NUMERIC
    assert books_reply.requests == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply.json({"error": "quota"}, status=503), "books API answered HTTP 503"),
        (Reply(200, b"<html>not json"), "books API answer is not valid JSON"),
        (Reply.json({"totalItems": 0}), "books API found no book with ISBN 0486424618"),
        (
            Reply.json({"items": [{"volumeInfo": {"title": "x"}}]}),
            "books API volumeInfo has no authors",
        ),
        (Reply.json(VOLUMES_ANSWER, delay=1.6), "books API did not answer within 1 s"),
    ],
    ids=["503", "bad-json", "no-items", "missing-fields", "timeout"],
)
def test_v2_failures_are_400_with_the_reason(
    v2: Service, books_reply: FakeApi, reply: Reply, error: str
) -> None:
    books_reply.reply(VOLUMES_PATH, reply)
    answer = call(v2, "/details/0")
    assert (answer.status, answer.json()) == (400, {"error": error})
    assert answer.seconds < 1.5


def test_v2_refused_is_400(logs: Path) -> None:
    env = {
        "ENABLE_EXTERNAL_BOOK_SERVICE": "true",
        "BOOKS_API_BASE_URL": f"http://127.0.0.1:{free_port()}",
    }
    service = start_service("bookinfo.details", logs, env)
    try:
        answer = call(service, "/details/0")
    finally:
        service.stop()
    assert answer.status == 400
    assert answer.json()["error"].startswith("books API unreachable: Cannot connect to host")


def test_sigterm_exits_0_and_every_request_was_logged(logs: Path) -> None:
    service = start_service("bookinfo.details", logs)
    call(service, "/details/9")
    call(service, "/details/x")
    assert service.stop() == 0
    log = service.log()
    assert '"GET /details/9" 200' in log
    assert '"GET /details/x" 400' in log
