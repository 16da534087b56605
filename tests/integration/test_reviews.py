"""reviews v1, v2 and v3 as real processes, against a real ratings process or a recording fake.

Checks the document (string id, exact texts, podname, ``"null"`` cluster name), the star colour,
the ratings error in every failure shape, the colour-dependent timeout, and the headers that
reach ratings (end-user and the full b3 set, as Istio's routing and tracing need).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_books_api import FakeApi, Reply, fake_api
from tests.support.mariadb import MariaDB
from tests.support.processes import Service, free_port, start_service

pytestmark = pytest.mark.integration

TEXT1 = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"
TEXT2 = (
    "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays "
    "by Shakespeare."
)
RATING_ERROR = {"error": "Ratings service is currently unavailable"}


@dataclass
class Answer:
    status: int
    content_type: str | None
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    def ratings(self) -> list[Any]:
        return [review.get("rating") for review in self.json()["reviews"]]


def call(
    service: Service,
    path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    timeout: float = 15,
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, path, headers=dict(headers or {}))
        resp = conn.getresponse()
        body = resp.read()
        return Answer(resp.status, resp.getheader("content-type"), body, time.monotonic() - started)
    finally:
        conn.close()


def reviews_env(version: str, ratings_port: int, **extra: str) -> dict[str, str]:
    env = {
        "v1": {"ENABLE_RATINGS": "false"},
        "v2": {"ENABLE_RATINGS": "true"},
        "v3": {"ENABLE_RATINGS": "true", "STAR_COLOR": "red"},
    }[version]
    return (
        env
        | {
            "RATINGS_HOSTNAME": "127.0.0.1",
            "RATINGS_SERVICE_PORT": str(ratings_port),
            "HOSTNAME": f"reviews-{version}-5f6b7c8d9-abcde",
        }
        | extra
    )


Spec = tuple[str, dict[str, str]] | tuple[str, dict[str, str], int]


def start_many(logs: Path, *specs: Spec) -> list[Service]:
    """Start several services at once (module, env[, port]): overlap their start-up waits."""

    def start(spec: Spec) -> Service:
        return start_service(spec[0], logs, spec[1], port=spec[2] if len(spec) > 2 else None)

    with ThreadPoolExecutor(len(specs)) as pool:
        return list(pool.map(start, specs))


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reviews-logs")


@pytest.fixture(scope="module")
def ratings(logs: Path) -> Iterator[Service]:
    service = start_service("bookinfo.ratings", logs, {"SERVICE_VERSION": "v1"})
    yield service
    service.stop()


@pytest.fixture(scope="module")
def reviews(logs: Path, ratings: Service) -> Iterator[dict[str, Service]]:
    versions = ("v1", "v2", "v3")
    specs = [("bookinfo.reviews", reviews_env(version, ratings.port)) for version in versions]
    started = dict(zip(versions, start_many(logs, *specs), strict=True))
    yield started
    for service in started.values():
        service.stop()


def test_health(reviews: dict[str, Service]) -> None:
    reply = call(reviews["v1"], "/health")
    assert (reply.status, reply.json()) == (200, {"status": "Reviews is healthy"})
    assert reply.body == b'{"status": "Reviews is healthy"}'
    assert reply.content_type == "application/json"


def test_v1_has_no_ratings(reviews: dict[str, Service]) -> None:
    reply = call(reviews["v1"], "/reviews/0")
    assert reply.status == 200
    assert reply.json() == {
        "id": "0",
        "podname": "reviews-v1-5f6b7c8d9-abcde",
        "clustername": "null",
        "reviews": [
            {"reviewer": "Reviewer1", "text": TEXT1},
            {"reviewer": "Reviewer2", "text": TEXT2},
        ],
    }


@pytest.mark.parametrize(("version", "color"), [("v2", "black"), ("v3", "red")])
def test_v2_and_v3_show_the_real_ratings_in_their_colour(
    reviews: dict[str, Service], version: str, color: str
) -> None:
    reply = call(reviews[version], "/reviews/0")
    assert reply.status == 200
    document = reply.json()
    assert (document["id"], document["podname"]) == ("0", f"reviews-{version}-5f6b7c8d9-abcde")
    assert [r["text"] for r in document["reviews"]] == [TEXT1, TEXT2]
    assert reply.ratings() == [{"stars": 5, "color": color}, {"stars": 4, "color": color}]


def test_ratings_posted_for_an_id_show_in_reviews(
    reviews: dict[str, Service], ratings: Service
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", ratings.port, timeout=5)
    conn.request("POST", "/ratings/77", body=b'{"Reviewer1":2,"Reviewer2":3}')
    assert conn.getresponse().status == 200
    conn.close()
    reply = call(reviews["v2"], "/reviews/77")
    assert reply.json()["id"] == "77"
    assert reply.ratings() == [{"stars": 2, "color": "black"}, {"stars": 3, "color": "black"}]


@pytest.mark.parametrize("path", ["/reviews/abc", "/reviews/1.5", "/reviews/2147483648"])
def test_non_int_id_is_404(reviews: dict[str, Service], path: str) -> None:
    assert call(reviews["v1"], path, timeout=3).status == 404


def test_int_id_is_normalised_like_java(reviews: dict[str, Service]) -> None:
    assert call(reviews["v1"], "/reviews/+007").json()["id"] == "7"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/reviews/0", 405), ("DELETE", "/health", 405), ("GET", "/nope", 404)],
)
def test_wrong_method_or_path(
    reviews: dict[str, Service], method: str, path: str, status: int
) -> None:
    assert call(reviews["v2"], path, method, timeout=3).status == status


def test_cluster_name_is_reported(logs: Path, ratings: Service) -> None:
    env = reviews_env("v1", ratings.port, CLUSTER_NAME="cluster-east")
    service = start_service("bookinfo.reviews", logs, env)
    try:
        assert call(service, "/reviews/1").json()["clustername"] == "cluster-east"
    finally:
        service.stop()


def test_ratings_refused_gives_the_error_to_every_reviewer(logs: Path) -> None:
    service = start_service("bookinfo.reviews", logs, reviews_env("v3", free_port()))
    try:
        reply = call(service, "/reviews/0")
    finally:
        service.stop()
    assert reply.status == 200
    assert reply.ratings() == [RATING_ERROR, RATING_ERROR]
    assert reply.seconds < 1


def test_slow_ratings_time_out_after_2_5_s_when_red_but_not_when_black(logs: Path) -> None:
    ratings_env = {
        "SERVICE_VERSION": "v-delayed",
        "RATINGS_FAULT_PROBABILITY": "1",
        "RATINGS_DELAY_SECONDS": "3.5",
    }
    port = free_port()
    slow, red, black = start_many(
        logs,
        ("bookinfo.ratings", ratings_env, port),
        ("bookinfo.reviews", reviews_env("v3", port)),
        ("bookinfo.reviews", reviews_env("v2", port)),
    )
    try:
        with ThreadPoolExecutor(2) as pool:
            red_reply, black_reply = pool.map(lambda s: call(s, "/reviews/0"), (red, black))
    finally:
        for service in (red, black, slow):
            service.stop()
    assert red_reply.ratings() == [RATING_ERROR, RATING_ERROR]
    assert 2.3 <= red_reply.seconds <= 4
    assert black_reply.ratings() == [{"stars": 5, "color": "black"}, {"stars": 4, "color": "black"}]
    assert black_reply.seconds >= 3.4


@pytest.fixture(scope="module")
def recording_ratings() -> Iterator[FakeApi]:
    with fake_api() as api:
        yield api


@pytest.fixture(scope="module")
def reviews_on_fake(logs: Path, recording_ratings: FakeApi) -> Iterator[Service]:
    env = reviews_env("v2", recording_ratings.port)
    service = start_service("bookinfo.reviews", logs, env)
    yield service
    service.stop()


TRACE_HEADERS = {
    "end-user": "jason",
    "x-request-id": "7b2c8e52-6e47-4a1b-9a31-0b8f3c9d2e11",
    "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124",
    "x-b3-spanid": "a2fb4a1d1a96d312",
    "x-b3-parentspanid": "0020000000000001",
    "x-b3-sampled": "1",
    "x-b3-flags": "1",
    "traceparent": "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01",
    "cookie": "session=abc",
    "authorization": "Bearer t0k3n",
    "user-agent": "bookinfo-test/1.0",
}


def test_headers_are_forwarded_to_ratings(
    reviews_on_fake: Service, recording_ratings: FakeApi
) -> None:
    recording_ratings.reply(
        "/ratings/0", Reply.json({"id": 0, "ratings": {"Reviewer1": 1, "Reviewer2": 0}})
    )
    recording_ratings.requests.clear()
    headers = TRACE_HEADERS | {"x-not-forwarded": "1"}
    reply = call(reviews_on_fake, "/reviews/0", headers=headers)
    # A 0 stays a number: productpage, not reviews, decides to draw no star for it.
    assert reply.ratings() == [{"stars": 1, "color": "black"}, {"stars": 0, "color": "black"}]
    [request] = recording_ratings.requests
    assert request.path == "/ratings/0"
    assert {k: request.headers.get(k) for k in TRACE_HEADERS} == TRACE_HEADERS
    assert request.headers["accept"] == "application/json"
    assert "x-not-forwarded" not in request.headers


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Reply.json({"id": 0, "ratings": {"Reviewer2": 3}}),
            [RATING_ERROR, {"stars": 3, "color": "black"}],
        ),
        (Reply.json({"error": "could not connect to ratings database"}), [RATING_ERROR] * 2),
        (Reply.json({"error": "Service unavailable"}, status=503), [RATING_ERROR] * 2),
        (Reply(200, b"not json"), [RATING_ERROR] * 2),
    ],
    ids=["missing-reviewer", "200-error-body", "503", "bad-json"],
)
def test_each_ratings_failure_shape(
    reviews_on_fake: Service, recording_ratings: FakeApi, reply: Reply, expected: list[Any]
) -> None:
    recording_ratings.reply("/ratings/5", reply)
    recording_ratings.requests.clear()
    answer = call(reviews_on_fake, "/reviews/5")
    assert (answer.status, answer.ratings()) == (200, expected)
    assert len(recording_ratings.requests) == 1, "reviews must not retry ratings"


def test_ratings_is_reached_through_http_proxy_like_a_sidecar(
    logs: Path, recording_ratings: FakeApi
) -> None:
    # On the local mesh the sidecar Envoy is the app's HTTP_PROXY: it must get an absolute-form
    # request naming the ratings service, so that it can route by host as Istio does.
    target = "http://ratings.default.svc.cluster.local:9080/ratings/6"
    recording_ratings.reply(target, Reply.json({"ratings": {"Reviewer1": 2, "Reviewer2": 1}}))
    recording_ratings.requests.clear()
    env = reviews_env(
        "v2",
        9080,
        RATINGS_HOSTNAME="ratings",
        SERVICES_DOMAIN="default.svc.cluster.local",
        HTTP_PROXY=recording_ratings.url,
    )
    service = start_service("bookinfo.reviews", logs, env)
    try:
        answer = call(service, "/reviews/6", headers={"end-user": "jason"})
    finally:
        service.stop()
    assert answer.ratings() == [{"stars": 2, "color": "black"}, {"stars": 1, "color": "black"}]
    [request] = recording_ratings.requests
    assert request.path == target
    assert request.headers["host"] == "ratings.default.svc.cluster.local:9080"
    assert request.headers["end-user"] == "jason"


def test_v3_against_ratings_v2_on_mariadb(mariadb: MariaDB, logs: Path) -> None:
    env = {
        "SERVICE_VERSION": "v2",
        "DB_TYPE": "mysql",
        "MYSQL_DB_HOST": "127.0.0.1",
        "MYSQL_DB_PORT": str(mariadb.port),
    }
    good_port, denied_port = free_port(), free_port()
    db_ratings, denied, good, bad = start_many(
        logs,
        ("bookinfo.ratings", env, good_port),
        ("bookinfo.ratings", env | {"MYSQL_DB_PASSWORD": "nope"}, denied_port),
        ("bookinfo.reviews", reviews_env("v3", good_port)),
        ("bookinfo.reviews", reviews_env("v3", denied_port)),
    )
    try:
        assert call(good, "/reviews/0").ratings() == [
            {"stars": 5, "color": "red"},
            {"stars": 4, "color": "red"},
        ]
        # ratings answers 200 with an error body; reviews finds no ratings in it.
        assert call(bad, "/reviews/0").ratings() == [RATING_ERROR, RATING_ERROR]
    finally:
        for service in (good, bad, db_ratings, denied):
            service.stop()


def test_sigterm_exits_0_and_every_request_was_logged(logs: Path, ratings: Service) -> None:
    service = start_service("bookinfo.reviews", logs, reviews_env("v2", ratings.port))
    call(service, "/reviews/3")
    assert service.stop() == 0
    assert '"GET /reviews/3" 200' in service.log()
