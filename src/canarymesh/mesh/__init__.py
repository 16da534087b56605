"""PURE: the normalised mesh model (services, workloads, proxies, endpoints, config indexes).

Built from the api resources by ``mesh.build.build_mesh``; read by ``canarymesh.xds``. Nothing
here does I/O, reads the clock or the environment.
"""
