"""productpage settings, read once from the environment at the process edge (``__main__``).

The variable names are those of Istio's productpage image, so the manifests that configure it
(``SERVICES_DOMAIN``, ``*_HOSTNAME``, ``*_SERVICE_PORT``, ``FLOOD_FACTOR``) keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Flask signs the original's cookie with a hard-coded key; a fixed default keeps the same property
# that matters here: every replica (and every worker) accepts every other replica's cookie.
DEFAULT_SECRET_KEY = "bookinfo-productpage-default-secret"


class SettingsError(ValueError):
    """An environment variable holds a value productpage cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Where the backends are and how productpage behaves; built by :meth:`from_env` or by tests."""

    details_url: str = "http://details:9080"
    reviews_url: str = "http://reviews:9080"
    ratings_url: str = "http://ratings:9080"
    flood_factor: int = 0
    secret_key: str = DEFAULT_SECRET_KEY
    # Per-attempt timeout of every backend call, 3 s as in the original (spec §4.0).
    backend_timeout: float = 3.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from Istio's productpage variables; unset ones take the image's defaults."""
        domain = env.get("SERVICES_DOMAIN", "")
        suffix = f".{domain}" if domain else ""

        def url(service: str) -> str:
            host = env.get(f"{service.upper()}_HOSTNAME", service)
            port = _int(env, f"{service.upper()}_SERVICE_PORT", 9080, minimum=1, maximum=65535)
            return f"http://{host}{suffix}:{port}"

        return cls(
            details_url=url("details"),
            reviews_url=url("reviews"),
            ratings_url=url("ratings"),
            flood_factor=_int(env, "FLOOD_FACTOR", 0, minimum=0),
            secret_key=env.get("PRODUCTPAGE_SECRET_KEY") or DEFAULT_SECRET_KEY,
        )


def _int(
    env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None
) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r}: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name}={raw!r}: must be at most {maximum}")
    return value
