"""Ratings kept in process memory (every mode but v2): the default, or what was POSTed.

Called by :mod:`bookinfo.ratings.app`. Like the original, the store lives as long as the process
and is not shared between replicas.
"""

from __future__ import annotations

from typing import Any

DEFAULT_RATINGS: dict[str, int] = {"Reviewer1": 5, "Reviewer2": 4}


class RatingsStore:
    """Product id → the ratings object POSTed for it."""

    def __init__(self) -> None:
        self._ratings: dict[int, dict[str, Any]] = {}

    def get(self, product_id: int) -> dict[str, Any]:
        """The answer for ``GET /ratings/<id>``."""
        ratings = self._ratings.get(product_id, DEFAULT_RATINGS)
        return {"id": product_id, "ratings": ratings}

    def put(self, product_id: int, ratings: dict[str, Any]) -> dict[str, Any]:
        """Store ``ratings`` for ``product_id`` and return what a GET will now answer."""
        self._ratings[product_id] = ratings
        return self.get(product_id)
