"""Pure: the reviews JSON document and how a ratings answer turns into stars.

Called by :mod:`bookinfo.reviews.app`. The strings are the compatibility contract: productpage
renders them, and Istio's CI greps for ``Ratings service is currently unavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REVIEWS: tuple[tuple[str, str], ...] = (
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
RATINGS_UNAVAILABLE = "Ratings service is currently unavailable"


@dataclass(frozen=True, slots=True)
class Ratings:
    """What v2/v3 attach to the reviews: the colour, and the stars of each reviewer known."""

    color: str
    stars: Mapping[str, int]


def stars_from_answer(answer: object) -> dict[str, int]:
    """The reviewers' stars in a ratings answer ``{"ratings": {"Reviewer1": 5, ...}}``.

    A reviewer missing from the answer, or with a non-numeric value, is left out, so that reviewer
    alone shows the error. Java's ``getInt`` truncates a fractional number; so do we.
    """
    ratings = answer.get("ratings") if isinstance(answer, dict) else None
    if not isinstance(ratings, dict):
        return {}
    stars: dict[str, int] = {}
    for reviewer, _ in REVIEWS:
        value = ratings.get(reviewer)
        if isinstance(value, int | float) and not isinstance(value, bool):
            stars[reviewer] = int(value)
    return stars


def reviews_document(
    product_id: int, podname: str, clustername: str, ratings: Ratings | None
) -> dict[str, Any]:
    """The ``/reviews/<id>`` answer; ``ratings`` is None in v1, which shows no rating at all.

    ``id`` is a string and an unset cluster name is the string ``"null"``, as in the original.
    """
    reviews: list[dict[str, Any]] = []
    for reviewer, text in REVIEWS:
        review: dict[str, Any] = {"reviewer": reviewer, "text": text}
        if ratings is not None:
            stars = ratings.stars.get(reviewer)
            review["rating"] = (
                {"error": RATINGS_UNAVAILABLE}
                if stars is None
                else {"stars": stars, "color": ratings.color}
            )
        reviews.append(review)
    return {
        "id": str(product_id),
        "podname": podname,
        "clustername": clustername,
        "reviews": reviews,
    }
