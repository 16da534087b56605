"""Jinja2 rendering of productpage's HTML pages from the pure view models in :mod:`.view`."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from bookinfo.productpage.view import PageView, ServiceNode

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Distinct pages remembered: a page is a pure function of its (hashable, frozen) view, and the
# backends' answers rarely change, so most renders are repeats. Bounded, because user names are
# part of the view.
RENDER_CACHE_SIZE = 1024


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
        self.product_page = lru_cache(maxsize=RENDER_CACHE_SIZE)(self._render_product_page)

    def _render_product_page(self, view: PageView) -> str:
        return self._product_page.render(page=view)

    def index(self, services: ServiceNode) -> str:
        return self._index.render(services=services)
