"""details settings, read once from the environment at the process edge (``__main__``).

The variable names are those of Istio's details image (``ENABLE_EXTERNAL_BOOK_SERVICE``,
``DO_NOT_ENCRYPT``). ``BOOKS_API_BASE_URL`` and ``BOOKS_API_TIMEOUT_SECONDS`` are ours: they let
tests and the local mesh point v2 at a server on loopback and fail fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from bookinfo.common.proxy import proxy_for_url

GOOGLE_BOOKS_TLS = "https://www.googleapis.com"
GOOGLE_BOOKS_PLAIN = "http://www.googleapis.com"


class SettingsError(ValueError):
    """An environment variable holds a value details cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How details answers; built by :meth:`from_env` or directly by tests."""

    enable_external_book_service: bool = False
    books_api_base_url: str = GOOGLE_BOOKS_TLS
    # The original sets Net::HTTP read_timeout = 5 s (bookinfo-spec §4.0).
    books_api_timeout: float = 5.0
    # The HTTP proxy the books API is reached through (the sidecar on the local mesh), or None.
    books_api_proxy: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from the image's variables; the originals compare with ``=== 'true'``."""
        default_base = (
            GOOGLE_BOOKS_PLAIN if env.get("DO_NOT_ENCRYPT") == "true" else GOOGLE_BOOKS_TLS
        )
        base = env.get("BOOKS_API_BASE_URL") or default_base
        if not base.startswith(("http://", "https://")):
            raise SettingsError(f"BOOKS_API_BASE_URL={base!r}: must start with http:// or https://")
        return cls(
            enable_external_book_service=env.get("ENABLE_EXTERNAL_BOOK_SERVICE") == "true",
            books_api_base_url=base.rstrip("/"),
            books_api_timeout=_positive_float(env, "BOOKS_API_TIMEOUT_SECONDS", 5.0),
            books_api_proxy=proxy_for_url(base, env),
        )


def _positive_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name}={raw!r}: must be a positive number of seconds")
    return value
