"""The product page's view model and HTML, from reviews/details JSON shaped like each version's."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from bookinfo.productpage.app import STATIC_DIR
from bookinfo.productpage.catalog import PAGE_PRODUCT
from bookinfo.productpage.render import TEMPLATES_DIR, Renderer
from bookinfo.productpage.view import Stars, build_page_view, review_view, service_tree
from tests.support.fake_backend import DETAILS, reviews_json

FILLED = 'id="glyphicon glyphicon-star"'
OUTLINE = "star-outline"
ERROR = {"error": "Ratings service is currently unavailable"}


def page(details: object | None, reviews: object | None, user: str | None = None) -> str:
    return Renderer().product_page(build_page_view(PAGE_PRODUCT, user, details, reviews))


def rated(color: str, first: int = 5, second: int = 4) -> dict[str, object]:
    ratings = ({"stars": first, "color": color}, {"stars": second, "color": color})
    return reviews_json("0", ratings, podname=f"reviews-{color}")


class Structure(HTMLParser):
    """Tracks open elements to check the document nests properly."""

    VOID = {"meta", "link", "img", "input", "br", "hr", "polygon"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[str] = []
        self.doctype = ""

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()


@pytest.mark.parametrize(
    "html",
    [
        page(dict(DETAILS), rated("red"), "jason"),
        page(None, None),
        page(dict(DETAILS), reviews_json("0", (ERROR, ERROR))),
        Renderer().index(service_tree("http://pp", "http://d", "http://r", "http://ra")),
    ],
)
def test_documents_are_well_formed_html5(html: str) -> None:
    parser = Structure()
    parser.feed(html)
    parser.close()
    assert parser.doctype == "DOCTYPE html"
    assert parser.stack == []
    assert parser.seen[:3] == ["html", "head", "meta"]
    assert "body" in parser.seen
    assert "<title>Simple Bookstore App</title>" in html


def test_v1_reviews_have_no_stars() -> None:
    html = page(dict(DETAILS), reviews_json("0"))
    assert "glyphicon glyphicon-star" not in html and OUTLINE not in html
    assert "Reviews served by: reviews-v1-fake" in html
    assert html.count("<blockquote") == 2


@pytest.mark.parametrize("color", ["black", "red"])
def test_5_and_4_stars_give_9_filled_and_1_outline(color: str) -> None:
    html = page(dict(DETAILS), rated(color))
    assert html.count(FILLED) == 9
    assert html.count(OUTLINE) == 1
    assert html.count(f'<div class="flex gap-x-1 text-{color}-500">') == 2


@pytest.mark.parametrize(
    ("rating", "expected"),
    [
        ({"stars": 3, "color": "red"}, Stars(3, 2, "red")),
        ({"stars": 9, "color": "red"}, Stars(5, 0, "red")),
        ({"stars": -2, "color": "red"}, Stars(0, 5, "red")),
        ({"stars": 2}, Stars(2, 3, "black")),
        ({"stars": 2, "color": 'red" onmouseover="x'}, Stars(2, 3, "black")),
    ],
)
def test_star_counts_are_clamped_and_colour_sanitised(
    rating: dict[str, object], expected: Stars
) -> None:
    assert review_view({"reviewer": "R", "text": "t", "rating": rating}).stars == expected


@pytest.mark.parametrize(
    "rating", [{"stars": 0, "color": "black"}, {"stars": True}, {"stars": "5"}, {}, "5"]
)
def test_zero_or_odd_stars_show_no_rating(rating: object) -> None:
    view = review_view({"reviewer": "R", "text": "t", "rating": rating})
    assert view.stars is None and view.rating_error is None


def test_rating_error_is_shown_in_red() -> None:
    html = page(dict(DETAILS), reviews_json("0", (ERROR, {"stars": 4, "color": "black"})))
    assert html.count('<p class="text-red-500">Ratings service is currently unavailable</p>') == 1
    assert html.count(FILLED) == 4


def test_failed_backends_show_the_error_strings() -> None:
    html = page(None, None)
    assert '<p class="text-2xl text-red-500">Error fetching product details</p>' in html
    assert "Sorry, product details are currently unavailable for this book." in html
    assert '<p class="text-2xl text-red-500">Error fetching product reviews</p>' in html
    assert "Sorry, product reviews are currently unavailable for this book." in html
    assert "Book Details" not in html and "Book Reviews" not in html


def test_backend_json_of_the_wrong_shape_counts_as_failed() -> None:
    html = page([1, 2], "reviews")
    assert "Error fetching product details" in html
    assert "Error fetching product reviews" in html


def test_backend_strings_are_escaped() -> None:
    reviews = reviews_json("0", podname="<script>alert(1)</script>")
    html = page(dict(DETAILS, publisher="<b>x</b>"), reviews, user="<img src=x>")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert ">&lt;img src=x&gt;</p>" in html


def test_details_table_columns_and_values() -> None:
    view = build_page_view(PAGE_PRODUCT, None, dict(DETAILS), None)
    assert view.details == (
        ("ISBN-10", "1234567890"),
        ("Publisher", "PublisherA"),
        ("Pages", "200"),
        ("Type", "paperback"),
        ("Language", "English"),
    )


def test_signed_in_nav_and_signed_out_dialog() -> None:
    signed_in = page(dict(DETAILS), reviews_json(), user="jason")
    assert '<p class="text-base font-medium text-gray-50">jason</p>' in signed_in
    assert 'href="logout"' in signed_in and ">Sign out</a>" in signed_in
    assert 'src="/static/img/izzy.png"' in signed_in
    assert "<dialog" not in signed_in
    signed_out = page(dict(DETAILS), reviews_json())
    assert 'id="sign-in-button"' in signed_out
    assert '<form method="post" action="login"' in signed_out
    assert 'name="username"' in signed_out and 'id="password" name="passwd"' in signed_out
    assert "BookInfo Sample" in signed_out


def test_stylesheet_has_every_class_the_templates_use() -> None:
    css = (STATIC_DIR / "tailwind" / "tailwind.css").read_text()
    defined = {m.replace("\\:", ":") for m in re.findall(r"^\s*\.((?:[\w-]|\\:)+)", css, re.M)}
    used: set[str] = set()
    for template in TEMPLATES_DIR.glob("*.html"):
        for classes in re.findall(r'class="([^"{]*)"', template.read_text()):
            used.update(classes.split())
    assert used - defined - {"star-outline"} == set()
    assert {"text-black-500", "text-red-500"} <= defined


def test_memoised_pages_never_mix_users_or_backend_answers() -> None:
    renderer = Renderer()

    def render(user: str | None, reviews: dict[str, object]) -> str:
        return renderer.product_page(build_page_view(PAGE_PRODUCT, user, dict(DETAILS), reviews))

    assert ">jason</p>" in render("jason", reviews_json())
    assert ">jason</p>" not in render(None, reviews_json())
    assert ">alice</p>" in render("alice", reviews_json())
    assert render("jason", rated("red")).count(FILLED) == 9
    assert FILLED not in render("jason", reviews_json())
