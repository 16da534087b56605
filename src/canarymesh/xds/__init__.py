"""PURE: translation of the mesh model into Envoy xDS resources (proto3-JSON dicts).

``xds.generate.generate(mesh, proxy) -> XdsSnapshot`` is the entry point; one module per Envoy
resource family. Nothing here does I/O, reads the clock or the environment.
"""
