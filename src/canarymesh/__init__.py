"""Canary Mesh: canary deployments on an Istio service mesh, locally or on a cluster."""

__version__ = "0.1.0"
