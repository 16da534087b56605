"""Durations as Istio and Kubernetes write them (Go ``time.ParseDuration`` syntax). Pure; used by
validation and by the translation to Envoy (route timeouts, fault delays, retry timeouts).

``7s``, ``0.5s``, ``100ms``, ``1m``, ``1h30m`` are durations; ``7`` (no unit) and ``-1s`` are not.
Istio also requires at least 1ms and millisecond precision (``agent.ValidateDuration``).
"""

from __future__ import annotations

import datetime
import functools
import re
from fractions import Fraction

__all__ = ["parse_duration", "problem_with_duration"]

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def _nanoseconds(text: str) -> Fraction | None:
    position = 0
    total = Fraction(0)
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            return None
        total += Fraction(match.group(1)) * _NANOS[match.group(2)]
        position = match.end()
    return total if text else None


@functools.lru_cache(maxsize=256)
def parse_duration(text: str) -> datetime.timedelta | None:
    """The duration ``text`` denotes, or None when it is not a valid positive duration.
    (Cached: the canary controller reads the same few durations of a spec every second.)"""
    nanos = _nanoseconds(text)
    if nanos is None:
        return None
    return datetime.timedelta(microseconds=round(nanos / 1000))


def problem_with_duration(text: str) -> bool:
    """True when Istio would refuse ``text``: bad syntax, under 1ms, or finer than 1ms."""
    nanos = _nanoseconds(text)
    if nanos is None or nanos < 1_000_000:
        return True
    return nanos % 1_000_000 != 0
