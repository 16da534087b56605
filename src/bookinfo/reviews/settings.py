"""reviews settings, read once from the environment at the process edge (``__main__``).

The variable names and defaults are those of Istio's reviews image (bookinfo-spec §4.3). Unset
``HOSTNAME`` and ``CLUSTER_NAME`` become the string ``"null"``, as Java's string concatenation of
a missing variable does in the original's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bookinfo.common.proxy import proxy_for

# The original's timeout depends on the colour, not the version: black (v2) waits 10 s, any other
# colour (v3 is red) 2.5 s. That is why the v3 timeout demo behaves differently (spec §8.1).
BLACK_TIMEOUT_SECONDS = 10.0
COLOURED_TIMEOUT_SECONDS = 2.5


class SettingsError(ValueError):
    """An environment variable holds a value reviews cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What reviews shows and where ratings is; built by :meth:`from_env` or by tests."""

    enable_ratings: bool = False
    star_color: str = "black"
    ratings_url: str = "http://ratings:9080/ratings"
    podname: str = "null"
    clustername: str = "null"
    # The HTTP proxy ratings is reached through (the sidecar on the local mesh), or None.
    ratings_proxy: str | None = None

    @property
    def ratings_timeout(self) -> float:
        """Connect and read timeout of the ratings call, each (spec §4.0)."""
        return BLACK_TIMEOUT_SECONDS if self.star_color == "black" else COLOURED_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from the image's variables; ``ENABLE_RATINGS`` is Java's ``Boolean.valueOf``."""
        domain = env.get("SERVICES_DOMAIN", "")
        suffix = f".{domain}" if domain else ""
        host = env.get("RATINGS_HOSTNAME", "ratings")
        port = env.get("RATINGS_SERVICE_PORT", "9080")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"RATINGS_SERVICE_PORT={port!r}: not a TCP port")
        return cls(
            enable_ratings=env.get("ENABLE_RATINGS", "false").lower() == "true",
            star_color=env.get("STAR_COLOR", "black"),
            ratings_url=f"http://{host}{suffix}:{int(port)}/ratings",
            podname=env.get("HOSTNAME", "null"),
            clustername=env.get("CLUSTER_NAME", "null"),
            ratings_proxy=proxy_for(host + suffix, env),
        )
