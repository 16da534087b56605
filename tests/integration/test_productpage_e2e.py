"""productpage in front of the real details, reviews and ratings services (no fakes)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Service, http_get, start_service

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_service("bookinfo.ratings", tmp_path_factory.mktemp("e2e"))
    yield service
    service.stop()


def start_stack(log_dir: Path, ratings: Service, reviews_env: dict[str, str]) -> list[Service]:
    details = start_service("bookinfo.details", log_dir)
    reviews = start_service(
        "bookinfo.reviews",
        log_dir,
        env={"RATINGS_HOSTNAME": "127.0.0.1", "RATINGS_SERVICE_PORT": str(ratings.port)}
        | reviews_env,
    )
    page = start_service(
        "bookinfo.productpage",
        log_dir,
        env={
            "DETAILS_HOSTNAME": "127.0.0.1",
            "DETAILS_SERVICE_PORT": str(details.port),
            "REVIEWS_HOSTNAME": "127.0.0.1",
            "REVIEWS_SERVICE_PORT": str(reviews.port),
            "RATINGS_HOSTNAME": "127.0.0.1",
            "RATINGS_SERVICE_PORT": str(ratings.port),
        },
    )
    return [page, reviews, details]


@pytest.mark.parametrize(
    ("reviews_env", "filled", "colour"),
    [
        ({"HOSTNAME": "reviews-v1-e2e"}, 0, None),
        ({"HOSTNAME": "reviews-v2-e2e", "ENABLE_RATINGS": "true"}, 9, "text-black-500"),
        (
            {"HOSTNAME": "reviews-v3-e2e", "ENABLE_RATINGS": "true", "STAR_COLOR": "red"},
            9,
            "text-red-500",
        ),
    ],
)
def test_page_for_each_reviews_version(
    tmp_path: Path, ratings: Service, reviews_env: dict[str, str], filled: int, colour: str | None
) -> None:
    stack = start_stack(tmp_path, ratings, reviews_env)
    try:
        status, _, body = http_get(f"{stack[0].url}/productpage")
        html = body.decode()
        assert status == 200
        assert "Book Details" in html and ">PublisherA</td>" in html
        assert f"Reviews served by: {reviews_env['HOSTNAME']}" in html
        assert html.count('id="glyphicon glyphicon-star"') == filled
        if colour:
            assert html.count(f"flex gap-x-1 {colour}") == 2
        status, _, body = http_get(f"{stack[0].url}/api/v1/products/0/ratings")
        assert status == 200
        assert re.search(rb'"Reviewer1": ?5', body)
        status, _, body = http_get(f"{stack[0].url}/api/v1/products/abc")
        assert (status, body) == (
            400,
            b'{"error": "Sorry, product details are currently unavailable for this book."}',
        )
    finally:
        exit_codes = [service.stop() for service in stack]
    assert exit_codes == [0, 0, 0]
