"""productpage settings, read once from the environment at the process edge (``__main__``).

The variable names are those of Istio's productpage image, so the manifests that configure it
(``SERVICES_DOMAIN``, ``*_HOSTNAME``, ``*_SERVICE_PORT``, ``FLOOD_FACTOR``) keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bookinfo.common.proxy import proxy_for

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
    # Backend base URL → the HTTP proxy to reach it through (from HTTP_PROXY/NO_PROXY); a URL
    # that is not listed is reached directly.
    proxies: tuple[tuple[str, str], ...] = ()

    def proxy(self, base_url: str) -> str | None:
        return dict(self.proxies).get(base_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from Istio's productpage variables; unset ones take the image's defaults."""
        domain = env.get("SERVICES_DOMAIN", "")
        suffix = f".{domain}" if domain else ""

        hosts = {
            service: env.get(f"{service.upper()}_HOSTNAME", service) + suffix
            for service in ("details", "reviews", "ratings")
        }
        urls = {
            service: f"http://{host}:"
            + str(_int(env, f"{service.upper()}_SERVICE_PORT", 9080, minimum=1, maximum=65535))
            for service, host in hosts.items()
        }
        proxies = tuple(
            (urls[service], proxy)
            for service, host in hosts.items()
            if (proxy := proxy_for(host, env)) is not None
        )
        return cls(
            details_url=urls["details"],
            reviews_url=urls["reviews"],
            ratings_url=urls["ratings"],
            proxies=proxies,
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
