"""The real clock: the :class:`~canarymesh.ports.Clock` port both controllers run on (the unit
tests drive the loop with ``tests/fakes.FakeClock`` instead)."""

from __future__ import annotations

import datetime
import time

__all__ = ["SystemClock"]


class SystemClock:
    def now(self) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
