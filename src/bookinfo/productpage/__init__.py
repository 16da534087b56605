"""Bookinfo productpage: the HTML front end and JSON API that calls details, reviews and ratings.

An aiohttp re-implementation of Istio's Flask ``productpage`` (``bookinfo-spec.md`` §4.1): same
routes, strings, timeouts, retries and header propagation. ``create_app(settings)`` in
:mod:`bookinfo.productpage.app` builds the application; ``python -m bookinfo.productpage [PORT]``
runs it. Importing the package has no side effects.
"""
