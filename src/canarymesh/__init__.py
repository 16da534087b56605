"""Canary Mesh: canary deployments on an Istio service mesh, locally or on a cluster."""

# The one place the version is written: the package metadata (pyproject.toml's dynamic version),
# ``canarymesh version`` and the dashboard read it from here.
__version__ = "0.1.0"
