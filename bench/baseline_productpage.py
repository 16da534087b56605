"""The baseline for ``bench/productpage.py``: productpage built the way Istio's original is.

Flask under gunicorn, one blocking ``requests.get`` per backend call with no connection pooling,
per-worker Prometheus counters, Flask's signed cookie session. It serves the same page as ours
(the same templates, view model and header rules, so both do the same rendering work) and makes
the same calls with the same timeouts and the reviews retry. Only the architecture differs.

Run by the benchmark as::

    gunicorn --pythonpath bench 'baseline_productpage:create_app()' -k gevent -w N --keep-alive 2

The environment is read inside :func:`create_app`, when gunicorn builds the app, never at import.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from flask import Flask, Response, redirect, render_template, request, session
from prometheus_client import CollectorRegistry, Counter, generate_latest

from bookinfo.productpage.app import STATIC_DIR
from bookinfo.productpage.catalog import PAGE_PRODUCT
from bookinfo.productpage.headers import outgoing_headers
from bookinfo.productpage.render import TEMPLATES_DIR
from bookinfo.productpage.settings import Settings
from bookinfo.productpage.view import build_page_view


def create_app() -> Flask:
    settings = Settings.from_env(os.environ)
    app = Flask(__name__, template_folder=str(TEMPLATES_DIR), static_folder=str(STATIC_DIR))
    app.secret_key = settings.secret_key
    counter = Counter(
        "request_result",
        "Results of requests",
        ["destination_app", "response_code"],
        registry=(registry := CollectorRegistry()),
    )

    def fetch(app_name: str, url: str, headers: dict[str, str], attempts: int = 1) -> Any:
        status, data = 500, None
        for _ in range(attempts):
            try:
                # A new connection per call, as the original's module-level requests.get does.
                res = requests.get(url, headers=headers, timeout=settings.backend_timeout)
                status = res.status_code
                data = res.json() if status == 200 else None
            except (requests.RequestException, ValueError):
                status, data = 500, None
            if status == 200:
                break
        counter.labels(destination_app=app_name, response_code=str(status)).inc()
        return data

    @app.get("/productpage")
    def productpage() -> str:
        user = session.get("user")
        headers = outgoing_headers(request.headers, user)  # type: ignore[arg-type]
        details = fetch("details", f"{settings.details_url}/details/0", headers)
        reviews = fetch("reviews", f"{settings.reviews_url}/reviews/0", headers, attempts=2)
        return render_template(
            "productpage.html", page=build_page_view(PAGE_PRODUCT, user, details, reviews)
        )

    @app.get("/health")
    def health() -> str:
        return "Product page is healthy"

    @app.post("/login")
    def login() -> Response:
        session["user"] = request.form["username"]
        return redirect(request.referrer or "/productpage")  # type: ignore[return-value]

    @app.get("/logout")
    def logout() -> Response:
        session.pop("user", None)
        return redirect(request.referrer or "/productpage")  # type: ignore[return-value]

    @app.get("/metrics")
    def metrics() -> bytes:
        return generate_latest(registry)

    return app
