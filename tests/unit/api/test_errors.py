"""The exception tree: one root, and retryability carried by the type."""

from __future__ import annotations

import pytest

from canarymesh.errors import CanaryMeshError, ConfigError, PermanentError, TemporaryError


@pytest.mark.parametrize("error_type", [ConfigError, TemporaryError, PermanentError])
def test_every_error_is_a_canarymesh_error(error_type: type[CanaryMeshError]) -> None:
    assert issubclass(error_type, CanaryMeshError)
    assert not issubclass(error_type, (ValueError, RuntimeError))


def test_a_temporary_error_says_when_to_retry() -> None:
    assert TemporaryError("prometheus unreachable").delay == 60.0
    error = TemporaryError("proxy not connected", delay=2.5)
    assert (str(error), error.delay) == ("proxy not connected", 2.5)
