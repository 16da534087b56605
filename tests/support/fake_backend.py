"""A controllable stand-in for details, reviews and ratings, run as a real process in tests.

Server: ``python -m tests.support.fake_backend PORT [--host HOST]``. By default it answers like
the real v1 services (``/details/<id>``, ``/reviews/<id>``, ``/ratings/<id>``, ``/health``; a
non-numeric details id gets details' 400). It records every request it receives (method, path,
headers, arrival time) and can be told to answer differently through ``/__fake/...``:

* ``PUT /__fake/behaviour`` with ``{"status", "delay", "json", "text", "times"}`` (all optional)
  queues a behaviour; with ``times`` it applies to that many requests, otherwise to all.
* ``GET /__fake/requests`` lists the recorded requests; ``DELETE /__fake`` forgets behaviours
  and recorded requests.

Client: :class:`FakeBackend` wraps those control calls for the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from aiohttp import web

DETAILS = {
    "author": "William Shakespeare",
    "year": 1595,
    "type": "paperback",
    "pages": 200,
    "publisher": "PublisherA",
    "language": "English",
    "ISBN-10": "1234567890",
    "ISBN-13": "123-1234567890",
}
REVIEW_TEXTS = (
    (
        "Reviewer1",
        "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!",
    ),
    (
        "Reviewer2",
        "Absolutely fun and entertaining. The play lacks thematic depth when compared to other "
        "plays by Shakespeare.",
    ),
)


def reviews_json(
    product_id: str = "0",
    ratings: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None),
    podname: str = "reviews-v1-fake",
    clustername: str = "null",
) -> dict[str, Any]:
    """A body shaped like the reviews service's; ``ratings`` are the two reviews' rating objects."""
    reviews = []
    for (reviewer, text), rating in zip(REVIEW_TEXTS, ratings, strict=True):
        review: dict[str, Any] = {"reviewer": reviewer, "text": text}
        if rating is not None:
            review["rating"] = rating
        reviews.append(review)
    return {"id": product_id, "podname": podname, "clustername": clustername, "reviews": reviews}


def _default(path: str) -> tuple[int, Any]:
    parts = path.strip("/").split("/")
    if parts == ["health"]:
        return 200, {"status": "Fake is healthy"}
    if parts[0] == "details":
        if len(parts) == 2 and parts[1].isdigit():
            return 200, {"id": int(parts[1]), **DETAILS}
        return 400, {"error": "please provide numeric product id"}
    if parts[0] == "reviews" and len(parts) == 2:
        return 200, reviews_json(parts[1])
    if parts[0] == "ratings" and len(parts) == 2 and parts[1].isdigit():
        return 200, {"id": int(parts[1]), "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    return 404, {"error": "not found"}


@dataclass
class _Behaviour:
    status: int | None = None
    delay: float = 0.0
    json: Any = None
    text: str | None = None
    times: int | None = None


class _State:
    def __init__(self) -> None:
        self.behaviours: list[_Behaviour] = []
        self.requests: list[dict[str, Any]] = []

    def next_behaviour(self) -> _Behaviour | None:
        if not self.behaviours:
            return None
        behaviour = self.behaviours[0]
        if behaviour.times is not None:
            behaviour.times -= 1
            if behaviour.times <= 0:
                self.behaviours.pop(0)
        return behaviour


STATE = web.AppKey("state", _State)


async def _serve(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.requests.append(
        {
            "method": request.method,
            "path": request.raw_path,
            "headers": [[k.lower(), v] for k, v in request.headers.items()],
            "time": time.time(),
        }
    )
    behaviour = state.next_behaviour()
    status, body = _default(request.path)
    if behaviour is None:
        return web.json_response(body, status=status)
    if behaviour.delay:
        await asyncio.sleep(behaviour.delay)
    status = behaviour.status if behaviour.status is not None else status
    if behaviour.text is not None:
        return web.Response(text=behaviour.text, status=status, content_type="text/plain")
    return web.json_response(behaviour.json if behaviour.json is not None else body, status=status)


async def _put_behaviour(request: web.Request) -> web.Response:
    request.app[STATE].behaviours.append(_Behaviour(**await request.json()))
    return web.json_response({"queued": len(request.app[STATE].behaviours)})


async def _get_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].requests)


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].behaviours.clear()
    request.app[STATE].requests.clear()
    return web.json_response({})


def create_app() -> web.Application:
    app = web.Application()
    app[STATE] = _State()
    app.router.add_put("/__fake/behaviour", _put_behaviour)
    app.router.add_get("/__fake/requests", _get_requests)
    app.router.add_delete("/__fake", _reset)
    app.router.add_route("*", "/{tail:.*}", _serve)
    return app


class FakeBackend:
    """Test-side handle on a running fake: tell it how to answer, read what it received."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def behave(
        self,
        *,
        status: int | None = None,
        delay: float = 0.0,
        json_body: Any = None,
        text: str | None = None,
        times: int | None = None,
    ) -> None:
        self._call(
            "PUT",
            "/__fake/behaviour",
            {"status": status, "delay": delay, "json": json_body, "text": text, "times": times},
        )

    def requests(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/__fake/requests"))

    def headers_of(self, index: int = -1) -> dict[str, str]:
        """The headers of one recorded request (the last by default), names in lower case."""
        return {name: value for name, value in self.requests()[index]["headers"]}

    def reset(self) -> None:
        self._call("DELETE", "/__fake")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_backend")
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
