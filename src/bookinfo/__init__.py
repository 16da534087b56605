"""Bookinfo, Istio's sample application, in Python.

Shell package: each service (productpage, details, reviews, ratings) is an aiohttp app built by
``create_app(settings)`` and started with ``python -m bookinfo.<service> [PORT]``.
"""
