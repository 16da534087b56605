"""productpage as a real process in front of real fake-backend processes, all on 127.0.0.1.

Each fake stands for one backend (details, reviews, ratings), records the headers it receives and
can be told to delay, fail or answer given JSON; see ``tests/support/fake_backend.py``.
"""

from __future__ import annotations

import http.client
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.fake_backend import FakeBackend, reviews_json
from tests.support.processes import Service, free_port, start_service

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FAKE = "tests.support.fake_backend"
FILLED = 'id="glyphicon glyphicon-star"'
OUTLINE = "star-outline"
RATING_ERROR = {"error": "Ratings service is currently unavailable"}


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.header_list = headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.headers_named(name)
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.header_list if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode()


def call(
    service: Service,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: str | None = None,
    timeout: float = 20.0,
) -> Response:
    """One request, redirects not followed, every status returned."""
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def backend_env(details: int, reviews: int, ratings: int) -> dict[str, str]:
    return {
        "DETAILS_HOSTNAME": "127.0.0.1",
        "DETAILS_SERVICE_PORT": str(details),
        "REVIEWS_HOSTNAME": "127.0.0.1",
        "REVIEWS_SERVICE_PORT": str(reviews),
        "RATINGS_HOSTNAME": "127.0.0.1",
        "RATINGS_SERVICE_PORT": str(ratings),
    }


class Stack:
    def __init__(
        self, page: Service, details: FakeBackend, reviews: FakeBackend, ratings: FakeBackend
    ):
        self.page = page
        self.details = details
        self.reviews = reviews
        self.ratings = ratings


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("productpage-logs")


@pytest.fixture(scope="module")
def fakes(log_dir: Path) -> Iterator[list[Service]]:
    services = [start_service(FAKE, log_dir, env={"PYTHONPATH": str(REPO)}) for _ in range(3)]
    yield services
    for service in services:
        service.stop()


@pytest.fixture(scope="module")
def running(fakes: list[Service], log_dir: Path) -> Iterator[Stack]:
    page = start_service("bookinfo.productpage", log_dir, env=backend_env(*(f.port for f in fakes)))
    yield Stack(page, *(FakeBackend(f.url) for f in fakes))
    page.stop()


@pytest.fixture
def stack(running: Stack) -> Stack:
    for fake in (running.details, running.reviews, running.ratings):
        fake.reset()
    return running


def metric(service: Service, app: str, code: int) -> float:
    text = call(service, "/metrics").text
    series = f'request_result_total{{destination_app="{app}",response_code="{code}"}}'
    pattern = "^" + re.escape(series) + r" ([0-9.e+]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


# --- routes and status codes ----------------------------------------------------------------------


def test_health(stack: Stack) -> None:
    resp = call(stack.page, "/health")
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/html; charset=utf-8"
    assert resp.text == "Product page is healthy"


@pytest.mark.parametrize("path", ["/", "/index.html"])
def test_index(stack: Stack, path: str) -> None:
    resp = call(stack.page, path)
    assert resp.status == 200
    assert "Hello! This is a simple bookstore application consisting of three services" in resp.text
    assert 'href="/productpage?u=normal"' in resp.text
    assert 'href="/productpage?u=test"' in resp.text
    assert stack.details.url.removeprefix("http://") in resp.text
    assert stack.details.requests() == []


@pytest.mark.parametrize(
    "path", ["/reviews", "/ratings", "/nope", "/api/v1/products/0/nope", "/productpage/x"]
)
def test_unknown_paths_are_404(stack: Stack, path: str) -> None:
    assert call(stack.page, path).status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/login"),
        ("POST", "/productpage"),
        ("PUT", "/health"),
        ("DELETE", "/api/v1/products"),
        ("POST", "/api/v1/products/0/ratings"),
        ("POST", "/logout"),
    ],
)
def test_wrong_methods_are_405(stack: Stack, method: str, path: str) -> None:
    assert call(stack.page, path, method=method, timeout=5).status == 405


def test_static_files(stack: Stack) -> None:
    css = call(stack.page, "/static/tailwind/tailwind.css")
    assert css.status == 200
    assert css.header(
        "Content-Type",
    ).startswith("text/css")  # type: ignore[union-attr]
    assert b".text-red-500" in css.body and b".text-black-500" in css.body
    png = call(stack.page, "/static/img/izzy.png")
    assert png.status == 200
    assert png.header("Content-Type") == "image/png"
    assert png.body.startswith(b"\x89PNG\r\n\x1a\n")
    assert call(stack.page, "/static/img/nope.png").status == 404
    assert call(stack.page, "/static/../app.py").status in (403, 404)


# --- the product page -----------------------------------------------------------------------------


def test_productpage_with_v1_reviews(stack: Stack) -> None:
    resp = call(stack.page, "/productpage?u=normal")
    html = resp.text
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/html; charset=utf-8"
    assert html.startswith("<!DOCTYPE html>")
    for tag in ("<html", "<head>", "</head>", "<body", "</body>", "</html>"):
        assert tag in html
    assert re.findall(r"<title>.*</title>", html) == ["<title>Simple Bookstore App</title>"]
    assert '<link rel="stylesheet" href="/static/tailwind/tailwind.css">' in html
    assert "BookInfo Sample" in html
    assert ">The Comedy of Errors</h1>" in html
    assert "<b>William Shakespeare's</b>" in html
    assert "Book Details" in html
    for column in ("ISBN-10", "Publisher", "Pages", "Type", "Language"):
        assert f">{column}</th>" in html
    for value in ("1234567890", "PublisherA", "200", "paperback", "English"):
        assert f">{value}</td>" in html
    assert "Book Reviews" in html
    assert "Reviewer1" in html and "Reviewer2" in html
    assert "Reviews served by: reviews-v1-fake" in html
    assert "glyphicon glyphicon-star" not in html
    assert "Error fetching" not in html
    # Logged out: the sign-in dialog and its form.
    assert 'id="sign-in-button"' in html and "Sign in to BookInfo" in html
    assert '<form method="post" action="login"' in html
    assert 'name="username"' in html and 'name="passwd"' in html
    assert "Sign out" not in html and "izzy.png" not in html
    assert [r["path"] for r in stack.details.requests()] == ["/details/0"]
    assert [r["path"] for r in stack.reviews.requests()] == ["/reviews/0"]
    assert stack.ratings.requests() == []


@pytest.mark.parametrize(
    ("color", "css_class"), [("black", "text-black-500"), ("red", "text-red-500")]
)
def test_stars_in_the_reviews_colour(stack: Stack, color: str, css_class: str) -> None:
    ratings = ({"stars": 5, "color": color}, {"stars": 4, "color": color})
    stack.reviews.behave(json_body=reviews_json("0", ratings, podname=f"reviews-{color}-pod"))
    html = call(stack.page, "/productpage").text
    assert html.count(FILLED) == 9
    assert html.count(OUTLINE) == 1
    assert html.count(f'<div class="flex gap-x-1 {css_class}">') == 2
    assert f"Reviews served by: reviews-{color}-pod" in html


def test_rating_error_text_comes_from_reviews(stack: Stack) -> None:
    stack.reviews.behave(json_body=reviews_json("0", (RATING_ERROR, RATING_ERROR)))
    html = call(stack.page, "/productpage").text
    assert html.count('<p class="text-red-500">Ratings service is currently unavailable</p>') == 2
    assert "glyphicon glyphicon-star" not in html


def test_cluster_name_shown_when_reviews_reports_one(stack: Stack) -> None:
    stack.reviews.behave(json_body=reviews_json("0", clustername="east"))
    assert "on cluster <span" in call(stack.page, "/productpage").text
    stack.reviews.reset()
    assert "on cluster" not in call(stack.page, "/productpage").text


def test_details_failure_keeps_the_page_200(stack: Stack) -> None:
    stack.details.behave(status=555, text="fault filter abort")
    resp = call(stack.page, "/productpage")
    assert resp.status == 200
    assert '<p class="text-2xl text-red-500">Error fetching product details</p>' in resp.text
    assert "Sorry, product details are currently unavailable for this book." in resp.text
    assert "Book Details" not in resp.text
    assert "Book Reviews" in resp.text


def test_reviews_503_is_retried_once_and_counted_once(stack: Stack) -> None:
    before = metric(stack.page, "reviews", 503)
    stack.reviews.behave(status=503)
    resp = call(stack.page, "/productpage")
    assert resp.status == 200
    assert '<p class="text-2xl text-red-500">Error fetching product reviews</p>' in resp.text
    assert "Sorry, product reviews are currently unavailable for this book." in resp.text
    assert "Book Details" in resp.text
    assert len(stack.reviews.requests()) == 2
    assert metric(stack.page, "reviews", 503) == before + 1


def test_reviews_retry_can_succeed(stack: Stack) -> None:
    stack.reviews.behave(status=500, times=1)
    html = call(stack.page, "/productpage").text
    assert len(stack.reviews.requests()) == 2
    assert "Book Reviews" in html and "Error fetching product reviews" not in html


@pytest.mark.slow
def test_slow_reviews_time_out_twice(stack: Stack) -> None:
    stack.reviews.behave(delay=4.0)
    started = time.monotonic()
    resp = call(stack.page, "/productpage")
    elapsed = time.monotonic() - started
    assert resp.status == 200
    assert "Sorry, product reviews are currently unavailable for this book." in resp.text
    assert len(stack.reviews.requests()) == 2
    assert 5.5 <= elapsed <= 8.0


@pytest.mark.slow
def test_slow_details_time_out_after_3s(stack: Stack) -> None:
    before = metric(stack.page, "details", 500)
    stack.details.behave(delay=4.0)
    started = time.monotonic()
    resp = call(stack.page, "/productpage")
    elapsed = time.monotonic() - started
    assert "Error fetching product details" in resp.text
    assert "Book Reviews" in resp.text
    assert 2.8 <= elapsed <= 4.5
    assert len(stack.details.requests()) == 1
    assert metric(stack.page, "details", 500) == before + 1


# --- sign in, sign out, end-user ------------------------------------------------------------------

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def login(stack: Stack, user: str, referer: str | None = None) -> Response:
    headers = dict(FORM, **({"Referer": referer} if referer else {}))
    body = urlencode({"username": user, "passwd": "password"})
    return call(stack.page, "/login", method="POST", headers=headers, body=body)


def session_cookie(resp: Response) -> str:
    (cookie,) = resp.headers_named("Set-Cookie")
    return cookie.split(";", 1)[0]


def test_login_shows_the_user_and_sends_end_user(stack: Stack) -> None:
    referer = f"{stack.page.url}/productpage?u=normal"
    resp = login(stack, "jason", referer)
    assert resp.status == 302
    assert resp.header("Location") == referer
    (set_cookie,) = resp.headers_named("Set-Cookie")
    assert re.fullmatch(r"session=[\w.-]+; HttpOnly; Path=/", set_cookie)
    cookie = session_cookie(resp)

    html = call(stack.page, "/productpage", headers={"Cookie": cookie}).text
    assert '<p class="text-base font-medium text-gray-50">jason</p>' in html
    assert 'href="logout"' in html and "Sign out" in html
    assert "/static/img/izzy.png" in html
    assert "sign-in-button" not in html
    assert stack.reviews.headers_of()["end-user"] == "jason"
    assert stack.details.headers_of()["end-user"] == "jason"
    assert stack.reviews.headers_of()["cookie"] == cookie

    out = call(stack.page, "/logout", headers={"Cookie": cookie, "Referer": referer})
    assert out.status == 302
    assert out.header("Location") == referer
    (cleared,) = out.headers_named("Set-Cookie")
    assert cleared.startswith('session=""') and "Max-Age=0" in cleared and "Path=/" in cleared


def test_login_without_referer_goes_to_the_product_page(stack: Stack) -> None:
    resp = login(stack, "alice")
    assert resp.status == 302
    assert resp.header("Location") == "/productpage"
    assert call(stack.page, "/logout").header("Location") == "/productpage"


@pytest.mark.parametrize(
    "body", ["", "passwd=x", "username=", "username=%20", "username=ja%0d%0ason"]
)
def test_login_rejects_a_missing_or_unusable_name(stack: Stack, body: str) -> None:
    resp = call(stack.page, "/login", method="POST", headers=FORM, body=body)
    assert resp.status == 400
    assert "username" in resp.text
    assert resp.headers_named("Set-Cookie") == []


def test_tampered_cookie_means_logged_out(stack: Stack) -> None:
    cookie = session_cookie(login(stack, "jason"))
    payload, signature = cookie.removeprefix("session=").split(".", 1)
    forged = "session=eyJ1c2VyIjoiYWRtaW4ifQ." + signature  # {"user":"admin"}, jason's signature
    for bad in (forged, cookie[:-2] + "xx", "session=garbage"):
        html = call(stack.page, "/productpage", headers={"Cookie": bad}).text
        assert "sign-in-button" in html and "Sign out" not in html
        assert "end-user" not in stack.reviews.headers_of()
    assert payload


def test_incoming_end_user_is_not_forwarded(stack: Stack) -> None:
    call(stack.page, "/productpage", headers={"end-user": "jason"})
    assert "end-user" not in stack.details.headers_of()
    assert "end-user" not in stack.reviews.headers_of()


def test_session_wins_over_an_incoming_end_user(stack: Stack) -> None:
    cookie = session_cookie(login(stack, "jason"))
    call(stack.page, "/productpage", headers={"Cookie": cookie, "end-user": "mallory"})
    assert stack.reviews.headers_of()["end-user"] == "jason"


# --- header propagation ---------------------------------------------------------------------------

VERBATIM = {
    "x-request-id": "6d1e7bb4-1c2f-4b9a-9a61-3f0a5d1c2b3e",
    "x-ot-span-context": "ot-ctx",
    "x-datadog-trace-id": "123",
    "x-datadog-parent-id": "456",
    "x-datadog-sampling-priority": "1",
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "congo=t61rcWkgMzE",
    "x-cloud-trace-context": "105445aa7843bc8bf206b12000100000/1;o=1",
    "grpc-trace-bin": "AAABAgMEBQYHCAkKCwwNDg8QEQ==",
    "sw8": "1-MWYyZDRi-NWEzNj-0-c2VydmljZQ==-aW5zdGFuY2U=-L2FwaQ==-aG9zdA==",
    "user-agent": "istio-test/1.0",
    "cookie": "theme=dark",
    "authorization": "Bearer abc.def.ghi",
    "jwt": "eyJhbGciOiJub25lIn0.e30.",
}


def test_verbatim_headers_reach_details_and_reviews(stack: Stack) -> None:
    call(stack.page, "/productpage", headers=VERBATIM)
    for fake in (stack.details, stack.reviews):
        received = fake.headers_of()
        for name, value in VERBATIM.items():
            assert received.get(name) == value, name


def test_b3_multi_headers_are_normalised(stack: Stack) -> None:
    incoming = {
        "x-b3-traceid": "463ac35c9f6413ad",
        "x-b3-spanid": "A2FB4A1D1A96D312",
        "x-b3-parentspanid": "0020000000000001",
        "x-b3-flags": "0",
    }
    call(stack.page, "/productpage", headers=incoming)
    for fake in (stack.details, stack.reviews):
        received = fake.headers_of()
        assert received["x-b3-traceid"] == "0000000000000000463ac35c9f6413ad"
        assert received["x-b3-spanid"] == "a2fb4a1d1a96d312"
        assert received["x-b3-sampled"] == "0"
        assert "x-b3-parentspanid" not in received
        assert "x-b3-flags" not in received


@pytest.mark.parametrize(
    ("incoming", "sampled"),
    [
        ({"x-b3-sampled": "1"}, "1"),
        ({"x-b3-sampled": "true"}, "1"),
        ({"x-b3-sampled": "0", "x-b3-flags": "1"}, "1"),
        ({"x-b3-flags": "1"}, "1"),
        ({"x-b3-sampled": "0"}, "0"),
    ],
)
def test_b3_sampled_rules(stack: Stack, incoming: dict[str, str], sampled: str) -> None:
    ids = {"x-b3-traceid": "80f198ee56343ba864fe8b2a57d3eff7", "x-b3-spanid": "e457b5a2e4d86bd1"}
    call(stack.page, "/productpage", headers={**ids, **incoming})
    received = stack.reviews.headers_of()
    assert received["x-b3-traceid"] == ids["x-b3-traceid"]
    assert received["x-b3-sampled"] == sampled


def test_single_b3_header_becomes_multi_headers(stack: Stack) -> None:
    b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"
    call(stack.page, "/productpage", headers={"b3": b3})
    received = stack.reviews.headers_of()
    assert received["x-b3-traceid"] == "80f198ee56343ba864fe8b2a57d3eff7"
    assert received["x-b3-spanid"] == "e457b5a2e4d86bd1"
    assert received["x-b3-sampled"] == "1"
    assert "b3" not in received and "x-b3-parentspanid" not in received


@pytest.mark.parametrize(
    "incoming",
    [
        {"x-b3-traceid": "463ac35c9f6413ad"},
        {"x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1"},
        {"x-b3-traceid": "xyz", "x-b3-spanid": "a2fb4a1d1a96d312"},
        {"x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "a2fb4a1d"},
        {"b3": "1"},
        {"b3": "not-a-valid-header"},
    ],
)
def test_invalid_b3_sends_no_b3_at_all(stack: Stack, incoming: dict[str, str]) -> None:
    call(stack.page, "/productpage", headers=incoming)
    received = stack.reviews.headers_of()
    assert not [name for name in received if name.startswith("x-b3-") or name == "b3"]


def test_api_ratings_propagates_headers_to_ratings(stack: Stack) -> None:
    headers = {
        "x-request-id": "req-1",
        "x-b3-traceid": "463ac35c9f6413ad",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-sampled": "1",
        "sw8": "sw8-value",
    }
    assert call(stack.page, "/api/v1/products/0/ratings", headers=headers).status == 200
    received = stack.ratings.headers_of()
    assert received["x-request-id"] == "req-1"
    assert received["x-b3-traceid"] == "0000000000000000463ac35c9f6413ad"
    assert received["x-b3-spanid"] == "a2fb4a1d1a96d312"
    assert received["x-b3-sampled"] == "1"
    assert received["sw8"] == "sw8-value"


# --- the JSON API ---------------------------------------------------------------------------------


def test_api_products_lists_the_one_book(stack: Stack) -> None:
    resp = call(stack.page, "/api/v1/products")
    assert resp.status == 200
    assert resp.header("Content-Type") == "application/json; charset=utf-8"
    assert resp.text == (
        '[{"id": 0, "title": "The Comedy of Errors", "descriptionHtml": "<a href=\\"https://en.'
        'wikipedia.org/wiki/The_Comedy_of_Errors\\">Wikipedia Summary</a>: The Comedy of Errors '
        "is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his "
        "most farcical comedies, with a major part of the humour coming from slapstick and "
        'mistaken identity, in addition to puns and word play."}]'
    )
    assert stack.details.requests() == []


@pytest.mark.parametrize(
    ("suffix", "fake", "upstream_path"),
    [
        ("", "details", "/details/7"),
        ("/reviews", "reviews", "/reviews/7"),
        ("/ratings", "ratings", "/ratings/7"),
    ],
)
def test_api_passes_the_backend_json_on(
    stack: Stack, suffix: str, fake: str, upstream_path: str
) -> None:
    resp = call(stack.page, f"/api/v1/products/7{suffix}")
    assert resp.status == 200
    backend: FakeBackend = getattr(stack, fake)
    (received,) = backend.requests()
    assert received["path"] == upstream_path
    body = json.loads(resp.body)
    assert body["id"] in (7, "7")


@pytest.mark.parametrize(
    ("suffix", "fake", "what", "status", "attempts"),
    [
        ("", "details", "details", 555, 1),
        ("/reviews", "reviews", "reviews", 503, 2),
        ("/ratings", "ratings", "ratings", 500, 1),
    ],
)
def test_api_passes_the_backend_status_on_with_an_error_body(
    stack: Stack, suffix: str, fake: str, what: str, status: int, attempts: int
) -> None:
    backend: FakeBackend = getattr(stack, fake)
    backend.behave(status=status, text="fault filter abort")
    resp = call(stack.page, f"/api/v1/products/0{suffix}")
    assert resp.status == status
    assert json.loads(resp.body) == {
        "error": f"Sorry, product {what} are currently unavailable for this book."
    }
    assert len(backend.requests()) == attempts


def test_api_non_numeric_id_passes_details_400_on(stack: Stack) -> None:
    resp = call(stack.page, "/api/v1/products/abc")
    assert resp.status == 400
    assert json.loads(resp.body) == {
        "error": "Sorry, product details are currently unavailable for this book."
    }
    assert stack.details.requests()[0]["path"] == "/details/abc"


def test_api_id_stays_one_path_segment(stack: Stack) -> None:
    call(stack.page, "/api/v1/products/a%2F..%2Fhealth")
    assert stack.details.requests()[0]["path"] == "/details/a%2F..%2Fhealth"


def test_api_unreadable_backend_body_is_a_500(stack: Stack) -> None:
    stack.details.behave(status=200, text="not json")
    assert call(stack.page, "/api/v1/products/0").status == 500


# --- metrics --------------------------------------------------------------------------------------


def test_metrics_count_each_logical_call(stack: Stack) -> None:
    resp = call(stack.page, "/metrics")
    assert resp.status == 200
    assert resp.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    assert "# HELP request_result_total Results of requests" in resp.text
    assert "# TYPE request_result_total counter" in resp.text
    details, reviews = metric(stack.page, "details", 200), metric(stack.page, "reviews", 200)
    for _ in range(3):
        call(stack.page, "/productpage")
    assert metric(stack.page, "details", 200) == details + 3
    assert metric(stack.page, "reviews", 200) == reviews + 3
    ratings = metric(stack.page, "ratings", 503)
    stack.ratings.behave(status=503)
    call(stack.page, "/api/v1/products/0/ratings")
    assert metric(stack.page, "ratings", 503) == ratings + 1


# --- separate instances: flooding, unreachable backends, shutdown ---------------------------------


def test_flood_factor_sends_extra_reviews_calls(fakes: list[Service], log_dir: Path) -> None:
    env = backend_env(*(f.port for f in fakes)) | {"FLOOD_FACTOR": "3"}
    page = start_service("bookinfo.productpage", log_dir, env=env)
    details, reviews = FakeBackend(fakes[0].url), FakeBackend(fakes[1].url)
    try:
        details.reset()
        reviews.reset()
        assert "Book Reviews" in call(page, "/productpage").text
        assert len(reviews.requests()) == 4
        assert len(details.requests()) == 1
    finally:
        assert page.stop() == 0


def test_unreachable_backends_answer_fast_and_sigterm_exits_0(log_dir: Path) -> None:
    closed = free_port()
    page = start_service("bookinfo.productpage", log_dir, env=backend_env(closed, closed, closed))
    try:
        started = time.monotonic()
        resp = call(page, "/productpage")
        assert resp.status == 200
        assert "Error fetching product details" in resp.text
        assert "Error fetching product reviews" in resp.text
        assert time.monotonic() - started < 2.0
        for suffix in ("", "/reviews", "/ratings"):
            assert call(page, f"/api/v1/products/0{suffix}").status == 500
        # One from the page and one from the API route, each after two attempts.
        assert metric(page, "reviews", 500) == 2
        assert call(page, "/health").status == 200
    finally:
        exit_code = page.stop()
    assert exit_code == 0
    log = page.log()
    lines = [line for line in log.splitlines() if '"GET ' in line or '"POST ' in line]
    assert [line.split('"')[1] for line in lines] == [
        "GET /productpage",
        "GET /api/v1/products/0",
        "GET /api/v1/products/0/reviews",
        "GET /api/v1/products/0/ratings",
        "GET /metrics",
        "GET /health",
    ]
    assert '"GET /productpage" 200' in log


def test_backends_are_reached_through_http_proxy(fakes: list[Service], log_dir: Path) -> None:
    """On the local mesh HTTP_PROXY is the sidecar; here a fake plays the proxy for every host."""
    proxy = FakeBackend(fakes[0].url)
    proxy.reset()
    env = {
        "HTTP_PROXY": fakes[0].url,
        "NO_PROXY": "127.0.0.1",
        "RATINGS_HOSTNAME": "127.0.0.1",
        "RATINGS_SERVICE_PORT": str(free_port()),
    }
    page = start_service("bookinfo.productpage", log_dir, env=env)
    try:
        html = call(page, "/productpage").text
        assert "Book Details" in html and "Book Reviews" in html
        received = proxy.requests()
        assert [r["path"] for r in received] == [
            "http://details:9080/details/0",
            "http://reviews:9080/reviews/0",
        ]
        assert dict(received[1]["headers"])["host"] == "reviews:9080"
        # ratings' host is in NO_PROXY: the direct connection is refused (nothing listens).
        assert call(page, "/api/v1/products/0/ratings").status == 500
        assert len(proxy.requests()) == 2
    finally:
        assert page.stop() == 0
