"""What ``/productpage`` shows, computed from the backends' answers. Pure; rendered by
:mod:`.render`.

The rules are the original template's (spec §4.1 "HTML of /productpage"): a review's rating
block appears only when it has a ``rating``; non-zero ``stars`` give that many filled stars and
5 - stars outline stars in the rating's colour; otherwise ``rating.error`` is shown as text.
Backend JSON is untrusted: a field with an unexpected type is treated as missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from bookinfo.productpage.catalog import Product

MAX_STARS = 5
# (column heading, key in the details JSON), in the order the table shows them.
DETAILS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("ISBN-10", "ISBN-10"),
    ("Publisher", "publisher"),
    ("Pages", "pages"),
    ("Type", "type"),
    ("Language", "language"),
)


@dataclass(frozen=True, slots=True)
class Stars:
    filled: int
    outline: int
    color: str


@dataclass(frozen=True, slots=True)
class ReviewView:
    reviewer: str
    text: str
    stars: Stars | None = None
    rating_error: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewsView:
    reviews: tuple[ReviewView, ...]
    podname: str
    # None when reviews reports no cluster (it sends the string "null" then).
    clustername: str | None


@dataclass(frozen=True, slots=True)
class PageView:
    product: Product
    user: str | None
    # (heading, value) rows of the Book Details table; None when details failed.
    details: tuple[tuple[str, str], ...] | None
    # None when reviews failed.
    reviews: ReviewsView | None


def build_page_view(
    product: Product, user: str | None, details: object | None, reviews: object | None
) -> PageView:
    """``details``/``reviews`` are the decoded JSON of successful calls, or None after a failure."""
    return PageView(
        product=product,
        user=user,
        details=details_rows(details) if isinstance(details, dict) else None,
        reviews=reviews_view(reviews) if isinstance(reviews, dict) else None,
    )


def details_rows(details: dict[str, object]) -> tuple[tuple[str, str], ...]:
    return tuple((heading, _text(details.get(key))) for heading, key in DETAILS_COLUMNS)


def reviews_view(data: dict[str, object]) -> ReviewsView:
    items = data.get("reviews")
    reviews = tuple(
        review_view(item)
        for item in (items if isinstance(items, list) else ())
        if isinstance(item, dict)
    )
    cluster = _text(data.get("clustername"))
    return ReviewsView(
        reviews=reviews,
        podname=_text(data.get("podname")),
        clustername=None if cluster in ("", "null") else cluster,
    )


def review_view(item: dict[str, object]) -> ReviewView:
    reviewer, text = _text(item.get("reviewer")), _text(item.get("text"))
    rating = item.get("rating")
    if not isinstance(rating, dict):
        return ReviewView(reviewer, text)
    stars = rating.get("stars")
    # bool is an int subclass; ``true`` is not a star count.
    if isinstance(stars, int) and not isinstance(stars, bool) and stars != 0:
        filled = max(0, min(MAX_STARS, stars))
        color = _text(rating.get("color"))
        # The colour becomes part of a CSS class name (text-<color>-500).
        if not (color.isascii() and color.isalpha()):
            color = "black"
        return ReviewView(reviewer, text, stars=Stars(filled, MAX_STARS - filled, color))
    error = rating.get("error")
    if isinstance(error, str) and error:
        return ReviewView(reviewer, text, rating_error=error)
    return ReviewView(reviewer, text)


def _text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


@dataclass(frozen=True, slots=True)
class ServiceNode:
    """One node of the service tree on the index page: a service, its URL, whom it calls."""

    name: str
    url: str
    children: tuple[ServiceNode, ...] = ()


def service_tree(
    productpage_url: str, details_url: str, reviews_url: str, ratings_url: str
) -> ServiceNode:
    """productpage calls details and reviews; reviews calls ratings. (The original labels the
    root with the details URL, an upstream slip we do not copy.)"""
    return ServiceNode(
        "productpage",
        productpage_url,
        (
            ServiceNode("details", details_url),
            ServiceNode("reviews", reviews_url, (ServiceNode("ratings", ratings_url),)),
        ),
    )
