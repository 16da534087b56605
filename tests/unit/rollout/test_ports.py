"""The ports stay small, and the in-memory fakes honour the same contracts as real adapters."""

from __future__ import annotations

import inspect
from typing import Protocol

import pytest

from canarymesh import ports
from canarymesh.errors import TemporaryError
from tests.fakes import EPOCH, FakeClock, FakeMetrics, FakeRouter, MemoryStore
from tests.unit.rollout.harness import spec
from tests.unit.rollout.port_contracts import check_metrics_offline, check_router, check_store

PROTOCOLS = [
    obj
    for _, obj in inspect.getmembers(ports, inspect.isclass)
    # Only the classes defined here: importing the kubernetes client makes issubclass(Mapping,
    # Protocol) true for the collections.abc names this module imports.
    if obj.__module__ == ports.__name__
    if issubclass(obj, Protocol) and obj is not Protocol
]


def test_every_port_has_five_methods_or_fewer() -> None:
    names = {p.__name__ for p in PROTOCOLS}
    assert names == {"Clock", "MetricsSource", "StateStore", "TrafficRouter"}
    for protocol in PROTOCOLS:
        methods = [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
        assert 1 <= len(methods) <= 5, (protocol.__name__, methods)


@pytest.mark.parametrize(
    "canary",
    [
        spec(),
        spec(strategy={"blueGreen": {"match": [{"headers": {"x-canary": {"exact": "1"}}}]}}),
    ],
    ids=["canary", "blue-green"],
)
def test_the_fake_router_keeps_the_router_contract(canary: object) -> None:
    clock = FakeClock()
    router = FakeRouter(clock, apply_delay=0.5)
    check_router(router, canary, lambda: clock.advance(1))  # type: ignore[arg-type]
    assert router.calls[-1] == "finalize v3"


def test_weights_are_not_verified_before_the_proxies_apply_them() -> None:
    clock = FakeClock()
    router = FakeRouter(clock, apply_delay=2.0)
    canary = spec()
    weights = router.get_weights(canary)
    router.set_weights(canary, weights)
    assert not router.verify_weights(canary, weights)
    clock.advance(2)
    assert router.verify_weights(canary, weights)


def test_the_memory_store_keeps_the_store_contract() -> None:
    check_store(MemoryStore(), EPOCH)


def test_the_fake_metrics_source_goes_offline_with_a_temporary_error() -> None:
    source = FakeMetrics()
    check_metrics_offline(source, lambda: setattr(source, "online", False))
    with pytest.raises(TemporaryError) as caught:
        source.query("up", EPOCH)
    assert caught.value.delay == 5.0


def test_the_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock()
    clock.sleep(1.5)
    assert clock.now() == EPOCH.replace(second=1, microsecond=500_000)
    assert clock.slept == [1.5]
