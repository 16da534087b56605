"""Jinja2 rendering of productpage's HTML pages from the pure view models in :mod:`.view`."""

from __future__ import annotations

from pathlib import Path

import jinja2

from bookinfo.productpage.view import PageView, ServiceNode

TEMPLATES_DIR = Path(__file__).parent / "templates"


class Renderer:
    """Holds the compiled templates; one per app, built once."""

    def __init__(self) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            # Templates ship with the package: checking their mtime on every render cost more
            # than rendering (a stat per request, measured with cProfile).
            auto_reload=False,
        )
        self._product_page = self._env.get_template("productpage.html")
        self._index = self._env.get_template("index.html")

    def product_page(self, view: PageView) -> str:
        return self._product_page.render(page=view)

    def index(self, services: ServiceNode) -> str:
        return self._index.render(services=services)
