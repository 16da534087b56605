"""The phases of a rollout and the manual commands a user can send it. Pure; read by
:mod:`canarymesh.rollout.machine`, stored in :class:`~canarymesh.rollout.state.CanaryState`,
shown by :mod:`canarymesh.views`.

A rollout moves (Flagger's ``status.go`` has the same idea, with more phases)::

    Initializing ──► Progressing ◄──► Paused
                        │   │
                        │   └──────────► Promoting ──► Succeeded
                        ▼                   │
                    RollingBack ◄───────────┘ (deadline, abort)
                        │
                        ▼
                      Failed
"""

from __future__ import annotations

import enum

__all__ = ["TERMINAL", "Command", "Phase"]


class Phase(enum.Enum):
    INITIALIZING = "Initializing"
    """Managed routes reconciled (canary at 0%), load generator started, pre-rollout webhooks
    called; waits until every pre-rollout webhook said yes."""
    PROGRESSING = "Progressing"
    """Walking the steps: set a weight (and wait until every proxy applied it), pause, analyse.
    Metrics are judged in every step once the weights are verified."""
    PAUSED = "Paused"
    """Waiting for a person: a ``pause`` step without duration, or ``rollout pause``. Metrics are
    still judged (a failing canary still rolls back); the progress deadline does not run."""
    PROMOTING = "Promoting"
    """All steps passed: 100% to the canary, then the managed routes name the canary's subset as
    the new stable (no restart: the canary's pods keep serving)."""
    SUCCEEDED = "Succeeded"
    """The canary is the stable; post-rollout webhooks called. Terminal."""
    ROLLING_BACK = "RollingBack"
    """A failed analysis, a failed gate, the deadline or ``rollout abort``: every request went
    back to the stable at once; waiting until every proxy applied it."""
    FAILED = "Failed"
    """Rolled back and verified; the reason says why. Terminal."""


TERMINAL = frozenset({Phase.SUCCEEDED, Phase.FAILED})


class Command(enum.Enum):
    """Manual inputs (``canarymesh rollout pause|resume|promote|abort``)."""

    PAUSE = "pause"  # hold at the current step (analysis goes on)
    RESUME = "resume"  # go on; also passes a pause step that has no duration
    PROMOTE = "promote"  # skip the remaining steps and analysis: promote now
    ABORT = "abort"  # roll back now
