"""The demo follows the rollout it started, not the record an earlier demo left in the mesh."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import pytest

from canarymesh.cli import demo
from canarymesh.rollout.phases import Phase
from canarymesh.rollout.state import CanaryState
from canarymesh.runtime.local.rollout_store import RolloutStore

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.UTC)


class Quiet:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, text: str) -> None:
        self.lines.append(text)


def test_an_earlier_demos_record_is_not_this_rollout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "state_dir", lambda: tmp_path)
    monkeypatch.setattr(demo, "ROLLOUT_TIMEOUT", 1.0)
    store = RolloutStore(tmp_path)
    old = dataclasses.replace(
        CanaryState.initial("reviews", "v1", NOW - datetime.timedelta(hours=1)),
        phase=Phase.SUCCEEDED,
    )
    store.save(
        "default/reviews", {"rolloutId": "earlier", "namespace": "default", "state": old.to_dict()}
    )
    narrator = Quiet()
    assert demo._follow("default/reviews", narrator, NOW) is Phase.PROGRESSING  # type: ignore[arg-type]
    assert narrator.lines == ["default/reviews: no outcome after 1s"]
    new = dataclasses.replace(CanaryState.initial("reviews", "v1", NOW), phase=Phase.FAILED)
    store.save(
        "default/reviews", {"rolloutId": "this", "namespace": "default", "state": new.to_dict()}
    )
    assert demo._follow("default/reviews", narrator, NOW) is Phase.FAILED  # type: ignore[arg-type]
