"""productpage's calls to details, reviews and ratings: timeouts, the reviews retry, counting.

Called by the page and API handlers in :mod:`.pages` and :mod:`.api`. The rules come from the
original (spec §4.0, §4.1, §8 item 2): every attempt has a 3 s timeout; details and ratings get
one attempt; reviews gets two, retried on any non-200 answer or exception, so ~6 s at worst.
A call that raised (timeout, refused, unreadable body) reports status 500. Each logical call
increments ``request_result`` once, with its final status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from yarl import URL

from bookinfo.productpage.metrics import Metrics
from bookinfo.productpage.settings import Settings

REVIEWS_ATTEMPTS = 2
# Nothing answered, or the answer could not be read: the original's status for an exception.
FAILED_CALL_STATUS = 500

Json = object


@dataclass(frozen=True, slots=True)
class CallResult:
    """The outcome of one logical backend call."""

    status: int
    # The decoded JSON body; only present when status is 200.
    data: Json = None

    @property
    def ok(self) -> bool:
        return self.status == 200


class Backends:
    """The three backends productpage talks to, over the process's shared client session."""

    def __init__(self, client: aiohttp.ClientSession, settings: Settings, metrics: Metrics) -> None:
        self._client = client
        self._settings = settings
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=settings.backend_timeout)
        self._proxies = dict(settings.proxies)

    async def details(self, product_id: str, headers: dict[str, str]) -> CallResult:
        result = await self._get(self._settings.details_url, "details", product_id, headers)
        self._metrics.record("details", result.status)
        return result

    async def reviews(self, product_id: str, headers: dict[str, str]) -> CallResult:
        result = CallResult(FAILED_CALL_STATUS)
        # The original's comment: "bug introduced explicitly for illustration in fault injection
        # task". Istio's fault-injection task depends on the resulting ~6 s, so we keep it.
        for _ in range(REVIEWS_ATTEMPTS):
            result = await self._get(self._settings.reviews_url, "reviews", product_id, headers)
            if result.ok:
                break
        self._metrics.record("reviews", result.status)
        return result

    async def reviews_with_flood(self, product_id: str, headers: dict[str, str]) -> CallResult:
        """The reviews call of ``/productpage``, plus FLOOD_FACTOR extra calls whose answers are
        dropped (the rate-limit demo). The original runs them one after another despite its
        asyncio wrapper; we run them concurrently with the real call, so flooding no longer
        multiplies the page's own latency."""
        flood = self._settings.flood_factor
        if flood == 0:
            return await self.reviews(product_id, headers)
        results = await asyncio.gather(
            *(self.reviews(product_id, headers) for _ in range(flood + 1))
        )
        return results[0]

    async def ratings(self, product_id: str, headers: dict[str, str]) -> CallResult:
        result = await self._get(self._settings.ratings_url, "ratings", product_id, headers)
        self._metrics.record("ratings", result.status)
        return result

    async def _get(
        self, base_url: str, endpoint: str, product_id: str, headers: dict[str, str]
    ) -> CallResult:
        # The id comes from the client's URL: quoting it keeps it one path segment upstream.
        url = URL(f"{base_url}/{endpoint}/{quote(product_id, safe='')}", encoded=True)
        proxy = self._proxies.get(base_url)
        try:
            async with self._client.get(
                url, headers=headers, timeout=self._timeout, proxy=proxy
            ) as resp:
                if resp.status != 200:
                    return CallResult(resp.status)
                return CallResult(200, await resp.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return CallResult(FAILED_CALL_STATUS)
