"""SHELL: the local mesh's building blocks, each a real process or server on 127.0.0.1.

``ads`` (gRPC xDS server), ``envoy`` (bootstrap, launch, admin), ``ca`` (workload certificates),
``prometheus`` (scraper and query client), ``supervisor`` (child processes), ``catalog`` (which
local program an image stands for). ``canarymesh up``/``apply`` wire them together.
"""
