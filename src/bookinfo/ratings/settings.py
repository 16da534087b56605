"""ratings settings, read once from the environment at the process edge (``__main__``).

``SERVICE_VERSION``, ``DB_TYPE``, ``MYSQL_DB_*`` and ``MONGO_DB_URL`` are the variables of Istio's
ratings image; their defaults are the values Istio's manifests set. The ``RATINGS_*`` variables
are ours: the fault modes' probability, delay and periods are fixed in the original (0.5, 7 s,
60 s, 15 min), which no test or demo can wait for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from bookinfo.ratings.faults import FaultSettings


class SettingsError(ValueError):
    """An environment variable holds a value ratings cannot use."""


@dataclass(frozen=True, slots=True)
class MySqlSettings:
    """Where ratings v2 finds MySQL (``DB_TYPE=mysql``); the database is always ``test``."""

    host: str = "mysqldb"
    port: int = 3306
    user: str = "root"
    password: str = "password"


@dataclass(frozen=True, slots=True)
class Settings:
    """How ratings behaves; built by :meth:`from_env` or directly by tests."""

    service_version: str = "v1"
    db_type: str = ""
    mysql: MySqlSettings = field(default_factory=MySqlSettings)
    mongo_url: str = "mongodb://mongodb:27017/test"
    faults: FaultSettings = field(default_factory=FaultSettings)
    # The Node drivers wait up to 30 s for an absent database; a caller with a 2.5 s timeout
    # (reviews v3) would see a hang instead of the database error, so fail after 2 s.
    db_timeout: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Settings from the image's variables plus our ``RATINGS_*`` knobs."""
        defaults = FaultSettings()
        return cls(
            service_version=env.get("SERVICE_VERSION", "v1"),
            db_type=env.get("DB_TYPE", ""),
            mysql=MySqlSettings(
                host=env.get("MYSQL_DB_HOST", "mysqldb"),
                port=_port(env, "MYSQL_DB_PORT", 3306),
                user=env.get("MYSQL_DB_USER", "root"),
                password=env.get("MYSQL_DB_PASSWORD", "password"),
            ),
            mongo_url=env.get("MONGO_DB_URL", "mongodb://mongodb:27017/test"),
            faults=FaultSettings(
                probability=_number(
                    env, "RATINGS_FAULT_PROBABILITY", defaults.probability, 0.0, 1.0
                ),
                delay=_number(env, "RATINGS_DELAY_SECONDS", defaults.delay, 0.0),
                unavailable_period=_period(
                    env, "RATINGS_UNAVAILABLE_PERIOD_SECONDS", defaults.unavailable_period
                ),
                unhealthy_period=_period(
                    env, "RATINGS_UNHEALTHY_PERIOD_SECONDS", defaults.unhealthy_period
                ),
            ),
            db_timeout=_period(env, "RATINGS_DB_TIMEOUT_SECONDS", 2.0),
        )


def _number(
    env: Mapping[str, str], name: str, default: float, low: float, high: float = math.inf
) -> float:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        bounds = f"between {low:g} and {high:g}" if high != math.inf else f"at least {low:g}"
        raise SettingsError(f"{name}={raw!r}: must be a finite number {bounds}")
    return value


def _period(env: Mapping[str, str], name: str, default: float) -> float:
    value = _number(env, name, default, 0.0)
    if value == 0:
        raise SettingsError(f"{name}={env[name]!r}: must be a positive number of seconds")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SettingsError(f"{name}={raw!r}: not a TCP port")
    return int(raw)
