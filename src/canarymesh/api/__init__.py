"""PURE package: the configuration model of Canary Mesh.

What users write (Kubernetes, Istio, Gateway API and our ``Canary`` kind) as typed, frozen
pydantic models; YAML loading that remembers file, document and line; validation and
cross-resource analysis that return :class:`~canarymesh.api.diagnostics.Diagnostics` instead
of raising. Called by the CLI (``validate``, ``analyze``, ``apply``), the local runtime and the
translation packages (:mod:`canarymesh.mesh`, :mod:`canarymesh.xds`).

No I/O besides reading the files the caller names (:func:`canarymesh.api.loader.load_paths`),
no clock, no sockets, no subprocesses: import-linter keeps it that way.
"""
