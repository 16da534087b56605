"""Pure: ratings' modes and the fault each request gets, from an injected draw and elapsed time.

Called by :mod:`bookinfo.ratings.app`, which passes ``random.random()`` and the seconds since
start, so unit tests decide both. The original (bookinfo-spec §4.4) uses ``Math.random() <= 0.5``
and ``setInterval`` timers that flip a flag; a flag flipped every *period* is the same as asking
which period the elapsed time falls in, which needs no timer task.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Mode(enum.Enum):
    """What ``SERVICE_VERSION`` selects; any unknown value behaves as v1, as in the original."""

    IN_MEMORY = "v1"
    DATABASE = "v2"
    FAULTY = "v-faulty"
    DELAYED = "v-delayed"
    UNAVAILABLE = "v-unavailable"
    UNHEALTHY = "v-unhealthy"


def mode_of(service_version: str) -> Mode:
    """The mode for a ``SERVICE_VERSION`` value (exact, case-sensitive match like the original)."""
    for mode in Mode:
        if mode.value == service_version:
            return mode
    return Mode.IN_MEMORY


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """The fault modes' knobs; the defaults are the original's constants."""

    probability: float = 0.5
    delay: float = 7.0
    unavailable_period: float = 60.0
    unhealthy_period: float = 900.0


@dataclass(frozen=True, slots=True)
class Plan:
    """How to answer one ``GET /ratings/<id>``: 503 at once, or the ratings after ``delay``."""

    unavailable: bool = False
    delay: float = 0.0


def plan_ratings(mode: Mode, faults: FaultSettings, draw: float, elapsed: float) -> Plan:
    """The plan for one request; ``draw`` is uniform in [0, 1), ``elapsed`` seconds since start."""
    # ``draw < probability`` (not the original's ``<=``) makes 0 mean never and 1 mean always;
    # at 0.5 the two differ on a set of measure zero.
    if mode is Mode.FAULTY:
        return Plan(unavailable=draw < faults.probability)
    if mode is Mode.DELAYED:
        return Plan(delay=faults.delay if draw < faults.probability else 0.0)
    if mode is Mode.UNAVAILABLE:
        return Plan(unavailable=_in_odd_period(elapsed, faults.unavailable_period))
    if mode is Mode.UNHEALTHY:
        return Plan(unavailable=not is_healthy(mode, faults, elapsed))
    return Plan()


def is_healthy(mode: Mode, faults: FaultSettings, elapsed: float) -> bool:
    """``/health``: only v-unhealthy is ever unhealthy, every other period of its cycle."""
    return mode is not Mode.UNHEALTHY or not _in_odd_period(elapsed, faults.unhealthy_period)


def _in_odd_period(elapsed: float, period: float) -> bool:
    # The original starts in the good state and flips at the end of each period.
    return int(elapsed // period) % 2 == 1
