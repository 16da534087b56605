"""Our own kind ``Canary`` (``canarymesh.io/v1alpha1``): which service to shift, between which
subsets, through which VirtualService, in which steps. Pure input schema.

This is the minimal shape the loader and validation need; the canary controller's issue fills in
analysis (metrics, thresholds, intervals) and may extend it. Field names follow the seed repo's
vocabulary (stable/canary subsets of one host).
"""

from __future__ import annotations

from canarymesh.api.base import Duration, Int, IstioModel, Str

__all__ = ["API_GROUP", "API_VERSION", "Canary", "CanaryStep"]

API_GROUP = "canarymesh.io"
API_VERSION = f"{API_GROUP}/v1alpha1"


class CanaryStep(IstioModel):
    """Send ``weight`` percent to the canary, then wait ``pause`` (a duration such as ``30s``)."""

    weight: Int
    pause: Duration | None = None


class Canary(IstioModel):
    """Shift ``host`` from ``stable_subset`` to ``canary_subset`` via ``virtual_service``."""

    host: Str
    virtual_service: Str
    stable_subset: Str
    canary_subset: Str
    steps: tuple[CanaryStep, ...] = ()
