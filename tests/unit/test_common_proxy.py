"""The proxy a service's calls go through is chosen per URL scheme and host, once."""

from __future__ import annotations

import pytest

from bookinfo.common.proxy import proxy_for_url
from bookinfo.details.settings import Settings as DetailsSettings
from bookinfo.reviews.settings import Settings as ReviewsSettings


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        ("http://ratings:9080/ratings", {"HTTP_PROXY": "http://127.0.0.1:1"}, "http://127.0.0.1:1"),
        ("https://books.example", {"HTTP_PROXY": "http://127.0.0.1:1"}, None),
        ("https://books.example", {"HTTPS_PROXY": "127.0.0.1:2"}, "http://127.0.0.1:2"),
        ("http://ratings:9080", {"HTTP_PROXY": "http://p:1", "NO_PROXY": "ratings"}, None),
        ("http://ratings:9080", {}, None),
    ],
)
def test_proxy_for_url(url: str, env: dict[str, str], expected: str | None) -> None:
    assert proxy_for_url(url, env) == expected


def test_reviews_and_details_resolve_their_proxy_at_startup() -> None:
    env = {"HTTP_PROXY": "http://127.0.0.1:15001", "NO_PROXY": "localhost"}
    assert ReviewsSettings.from_env(env).ratings_proxy == "http://127.0.0.1:15001"
    details = DetailsSettings.from_env(env | {"BOOKS_API_BASE_URL": "http://books:80"})
    assert details.books_api_proxy == "http://127.0.0.1:15001"
    assert ReviewsSettings.from_env({}).ratings_proxy is None
