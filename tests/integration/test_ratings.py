"""ratings as a real process on 127.0.0.1: routes, statuses, exact bodies, fault modes, SIGTERM.

The database-backed v2 is in ``test_ratings_database.py``. Every call has a short client timeout:
a request that hangs (as the original does for PUT) fails the test instead of stalling it.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import pytest

from tests.support.processes import Service, start_service

pytestmark = pytest.mark.integration

MODULE = "bookinfo.ratings"
DEFAULT = b'{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}'
NOT_NUMERIC = b'{"error":"please provide numeric product ID"}'
UNAVAILABLE = b'{"error":"Service unavailable"}'


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


def call(
    service: Service, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 3
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return Reply(resp.status, headers, data, time.monotonic() - started)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ratings-logs")


@pytest.fixture(scope="module")
def v1(logs: Path) -> Iterator[Service]:
    service = start_service(MODULE, logs, {"SERVICE_VERSION": "v1"})
    yield service
    service.stop()


def test_health(v1: Service) -> None:
    reply = call(v1, "/health")
    assert (reply.status, reply.body) == (200, b'{"status":"Ratings is healthy"}')
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/ratings/0", DEFAULT),
        ("/ratings/12abc", b'{"id":12,"ratings":{"Reviewer1":5,"Reviewer2":4}}'),
        ("/ratings/7?x=1", b'{"id":7,"ratings":{"Reviewer1":5,"Reviewer2":4}}'),
        ("/ratings/0x1f", b'{"id":31,"ratings":{"Reviewer1":5,"Reviewer2":4}}'),
    ],
)
def test_get_ratings_parses_the_id_like_parseint(v1: Service, path: str, body: bytes) -> None:
    reply = call(v1, path)
    assert (reply.status, reply.body) == (200, body)
    assert reply.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/ratings/", "/ratings/abc", "/ratings/1/x"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_non_numeric_id_is_400(v1: Service, method: str, path: str) -> None:
    reply = call(v1, path, method, body=b'{"Reviewer1":1}' if method == "POST" else None)
    assert (reply.status, reply.body) == (400, NOT_NUMERIC)


@pytest.mark.parametrize("path", ["/ratings", "/", "/nope", "/health/", "/ratingsx/1"])
def test_unknown_path_is_404_with_an_empty_body(v1: Service, path: str) -> None:
    reply = call(v1, path)
    assert (reply.status, reply.body) == (404, b"")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
def test_other_methods_get_405_at_once_instead_of_the_originals_hang(
    v1: Service, method: str
) -> None:
    reply = call(v1, "/ratings/1", method, timeout=2)
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, POST"
    assert reply.seconds < 1
    if method != "HEAD":
        assert json.loads(reply.body) == {"error": f"method {method} not allowed, use GET or POST"}


def test_post_round_trip_is_kept_per_id(v1: Service) -> None:
    posted = call(v1, "/ratings/3", "POST", b'{"Reviewer1":1,"Reviewer2":2}')
    assert (posted.status, posted.body) == (
        200,
        b'{"id":3,"ratings":{"Reviewer1":1,"Reviewer2":2}}',
    )
    assert call(v1, "/ratings/3").body == b'{"id":3,"ratings":{"Reviewer1":1,"Reviewer2":2}}'
    assert call(v1, "/ratings/4").body == b'{"id":4,"ratings":{"Reviewer1":5,"Reviewer2":4}}'


@pytest.mark.parametrize("body", [b"", b"not json", b"{", b"[1, 2]", b"5"])
def test_post_bad_json_is_400(v1: Service, body: bytes) -> None:
    reply = call(v1, "/ratings/5", "POST", body)
    assert (reply.status, reply.body) == (400, b'{"error":"please provide valid ratings JSON"}')
    assert call(v1, "/ratings/5").body == b'{"id":5,"ratings":{"Reviewer1":5,"Reviewer2":4}}'


def test_v_faulty_fails_about_half_of_the_requests(logs: Path) -> None:
    service = start_service(MODULE, logs, {"SERVICE_VERSION": "v-faulty"})
    try:
        replies = [call(service, "/ratings/0") for _ in range(80)]
    finally:
        service.stop()
    failed = [r for r in replies if r.status == 503]
    assert {r.body for r in failed} == {UNAVAILABLE}
    assert {r.body for r in replies if r.status != 503} == {DEFAULT}
    # Binomial(80, 0.5): outside 20..60 has probability below 1e-5.
    assert 20 <= len(failed) <= 60


def test_v_faulty_probability_one_always_fails(logs: Path) -> None:
    env = {"SERVICE_VERSION": "v-faulty", "RATINGS_FAULT_PROBABILITY": "1"}
    service = start_service(MODULE, logs, env)
    try:
        assert {call(service, "/ratings/0").status for _ in range(10)} == {503}
        assert call(service, "/health").status == 200
    finally:
        service.stop()


def test_v_delayed_answers_after_the_delay(logs: Path) -> None:
    env = {
        "SERVICE_VERSION": "v-delayed",
        "RATINGS_FAULT_PROBABILITY": "1",
        "RATINGS_DELAY_SECONDS": "0.6",
    }
    service = start_service(MODULE, logs, env)
    try:
        reply = call(service, "/ratings/0")
        quick = call(service, "/health")
    finally:
        service.stop()
    assert (reply.status, reply.body) == (200, DEFAULT)
    assert 0.55 <= reply.seconds < 1.5
    assert quick.seconds < 0.3


def _runs(samples: list[tuple[float, int]]) -> list[tuple[int, float, float]]:
    """(status, first seen, last seen) for each run of equal statuses, in order."""
    runs = []
    for status, group in groupby(samples, key=lambda sample: sample[1]):
        times = [t for t, _ in group]
        runs.append((status, times[0], times[-1]))
    return runs


def _poll(service: Service, path: str, seconds: float) -> list[tuple[float, int]]:
    started, samples = time.monotonic(), []
    while time.monotonic() - started < seconds:
        samples.append((time.monotonic() - started, call(service, path).status))
        time.sleep(0.04)
    return samples


PERIOD = 0.8


def test_v_unavailable_flips_every_period(logs: Path) -> None:
    env = {"SERVICE_VERSION": "v-unavailable", "RATINGS_UNAVAILABLE_PERIOD_SECONDS": str(PERIOD)}
    service = start_service(MODULE, logs, env)
    try:
        runs = _runs(_poll(service, "/ratings/0", 3.2 * PERIOD))
    finally:
        service.stop()
    assert [status for status, _, _ in runs][:4] == [200, 503, 200, 503]
    # The full runs in the middle last one period each (less the sampling step).
    for _, first, last in runs[1:3]:
        assert PERIOD - 0.3 <= last - first <= PERIOD + 0.1


def test_v_unhealthy_turns_health_and_ratings_bad_together(logs: Path) -> None:
    env = {"SERVICE_VERSION": "v-unhealthy", "RATINGS_UNHEALTHY_PERIOD_SECONDS": str(PERIOD)}
    service = start_service(MODULE, logs, env)
    try:
        started, pairs = time.monotonic(), []
        while time.monotonic() - started < 2.6 * PERIOD:
            pairs.append((call(service, "/health"), call(service, "/ratings/0")))
            time.sleep(0.04)
    finally:
        service.stop()
    health = [(0.0, h.status) for h, _ in pairs]
    assert [status for status, _, _ in _runs(health)][:3] == [200, 500, 200]
    bodies = {h.body for h, _ in pairs if h.status == 500}
    assert bodies == {b'{"status":"Ratings is not healthy"}'}
    # The two requests of a pair straddle a flip at most once per period boundary.
    agree = sum((h.status == 500) == (r.status == 503) for h, r in pairs)
    assert agree >= len(pairs) - 3
    assert {r.body for _, r in pairs if r.status == 503} == {UNAVAILABLE}


def test_sigterm_exits_0_and_every_request_was_logged(logs: Path) -> None:
    service = start_service(MODULE, logs)
    call(service, "/ratings/8")
    call(service, "/nope")
    assert service.stop() == 0
    log = service.log()
    assert '"GET /ratings/8" 200' in log
    assert '"GET /nope" 404' in log


def test_a_bad_setting_stops_start_up_with_the_reason(logs: Path) -> None:
    with pytest.raises(RuntimeError) as caught:
        start_service(MODULE, logs, {"RATINGS_FAULT_PROBABILITY": "2"})
    assert "RATINGS_FAULT_PROBABILITY='2': must be a finite number between 0 and 1" in str(
        caught.value
    )
