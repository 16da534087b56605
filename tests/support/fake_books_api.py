"""A fake external HTTP API on 127.0.0.1 that records every request and replies as told.

Used by the details v2 tests as the books API (``BOOKS_API_BASE_URL`` points here instead of
www.googleapis.com), and by the reviews tests as a ratings service that records the headers it
receives. It runs in a thread of the test process, so tests can change replies between requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VOLUMES_PATH = "/books/v1/volumes"

# Shaped like Google Books' answer for q=isbn:0486424618; the values differ from details v1's
# fixed record on purpose, so a test can tell a mapped answer from the default.
VOLUMES_ANSWER: dict[str, Any] = {
    "kind": "books#volumes",
    "totalItems": 1,
    "items": [
        {
            "kind": "books#volume",
            "id": "fake-comedy-of-errors",
            "volumeInfo": {
                "title": "The Comedy of Errors",
                "authors": ["William Shakespeare", "An Editor"],
                "publisher": "Dover Publications",
                "publishedDate": "2002-09-27",
                "industryIdentifiers": [
                    {"type": "ISBN_13", "identifier": "9780486424613"},
                    {"type": "ISBN_10", "identifier": "0486424618"},
                ],
                "pageCount": 80,
                "printType": "BOOK",
                "language": "en",
            },
        }
    ],
}


@dataclass(frozen=True)
class Reply:
    """What the server sends back: status, body, and how long it waits first."""

    status: int = 200
    body: bytes = b""
    delay: float = 0.0

    @classmethod
    def json(cls, value: object, status: int = 200, delay: float = 0.0) -> Reply:
        return cls(status, json.dumps(value).encode(), delay)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeApi:
    """The running server; ``replies`` maps a path (without query) to its reply, else 404."""

    port: int
    replies: dict[str, Reply] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reply(self, path: str, reply: Reply) -> None:
        self.replies[path] = reply


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            headers = {name.lower(): value for name, value in self.headers.items()}
            api.requests.append(Recorded("GET", self.path, headers))
            reply = api.replies.get(path, Reply(404, b'{"error":"not found"}'))
            time.sleep(reply.delay)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_api(replies: Mapping[str, Reply] | None = None) -> Iterator[FakeApi]:
    """Serve on a free 127.0.0.1 port for the duration of the ``with`` block."""
    api = FakeApi(port=0, replies=dict(replies or {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    server.daemon_threads = True
    api.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="fake-api", daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def fake_books_api() -> AbstractContextManager[FakeApi]:
    """A fake books API that answers the details v2 lookup with :data:`VOLUMES_ANSWER`."""
    return fake_api({VOLUMES_PATH: Reply.json(VOLUMES_ANSWER)})
