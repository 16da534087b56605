"""Canary Mesh: canary deployments on an Istio service mesh, locally or on a cluster."""

# The one place the version is written: the package metadata (pyproject.toml's dynamic version),
# ``canarymesh version`` and the dashboard read it from here.
__version__ = "0.1.0"
# The Istio release whose behaviour the local mesh follows: the Envoy configuration istiod sets
# and the analyzers istioctl runs (docs/istio-fidelity.md lists what that means, field by field).
ISTIO_RELEASE = "1.31"
