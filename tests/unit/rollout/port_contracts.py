"""Behaviour every adapter of :mod:`canarymesh.ports` must show, as plain functions taking the
adapter, so the same suite runs against the fakes here and against the local mesh and Kubernetes
adapters in their own tests (``settle`` lets an adapter wait for its proxies)."""

from __future__ import annotations

import datetime
from collections.abc import Callable

from canarymesh.api.canary import Canary
from canarymesh.ports import MetricsSource, StateStore, TrafficRouter
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.state import CanaryState


def check_router(router: TrafficRouter, canary: Canary, settle: Callable[[], None]) -> None:
    stable = canary.stable_subset()
    start = Weights(0, stable, match=bool(canary.match()))
    router.reconcile(canary, start)
    settle()
    assert router.verify_weights(canary, start)
    ten = Weights(10, stable, match=start.match)
    router.set_weights(canary, ten)
    assert router.get_weights(canary) == ten
    assert not router.verify_weights(canary, Weights(20, stable))
    settle()
    assert router.verify_weights(canary, ten)
    router.set_weights(canary, Weights(100, stable))
    settle()
    router.finalize(canary, canary.canary_subset())
    settle()
    promoted = Weights(0, canary.canary_subset())
    assert router.get_weights(canary) == promoted
    assert router.verify_weights(canary, promoted)


def check_store(store: StateStore, now: datetime.datetime) -> None:
    assert store.load("nothing-here") is None
    state = CanaryState.initial("reviews", "v1", now).with_weights(Weights(25, "v1"))
    store.save("reviews", state.to_dict())
    loaded = store.load("reviews")
    assert loaded is not None and CanaryState.from_dict(dict(loaded)) == state
    store.save("reviews", state.with_verified(now).to_dict())
    again = store.load("reviews")
    assert again is not None and CanaryState.from_dict(dict(again)).verified_at == now


def check_metrics_offline(source: MetricsSource, take_offline: Callable[[], None]) -> None:
    assert source.is_online()
    take_offline()
    assert not source.is_online()
