"""The one exception tree of Canary Mesh; every package raises from here, the CLI maps it to exits.

The class says what the caller may do next, so nobody has to parse messages::

    CanaryMeshError                 root: catch this to catch anything we raise on purpose
     ├── ConfigError                the user's input is wrong (YAML, flags, settings); CLI exit 1
     ├── TemporaryError(delay)      worth retrying after ``delay`` seconds (Prometheus unreachable,
     │                              a proxy that has not connected yet); the controller waits
     └── PermanentError             retrying will not help (a canary that failed its analysis);
                                    the controller stops the rollout and rolls back

Validation of manifests does not raise: it returns :class:`canarymesh.api.diagnostics.Diagnostics`
so that every problem is reported at once. :class:`ConfigError` is for the shell, when one of those
results (or a bad flag) must stop a command.
"""

from __future__ import annotations

__all__ = ["CanaryMeshError", "ConfigError", "PermanentError", "TemporaryError"]


class CanaryMeshError(Exception):
    """Root of every error Canary Mesh raises on purpose."""


class ConfigError(CanaryMeshError):
    """The user's input (manifests, flags, settings) is invalid; fix the input and run again."""


class TemporaryError(CanaryMeshError):
    """A transient failure; the same call may succeed after ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float = 60.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(CanaryMeshError):
    """A failure that retrying cannot fix; the caller should give up (and roll back)."""
