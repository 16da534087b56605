"""details' pure parts: the product id parser, the v1 record, the books API mapping, settings."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookinfo.details.book import BookLookupError, book_from_volumes, default_book
from bookinfo.details.product_id import parse_ruby_integer, product_id_from_path
from bookinfo.details.settings import Settings, SettingsError
from tests.support.fake_books_api import VOLUMES_ANSWER


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("+7", 7),
        ("1_000", 1000),
        ("0x1f", 31),
        ("0b101", 5),
        ("0o17", 15),
        ("017", 15),  # a leading 0 means octal in Ruby
        ("0d19", 19),
        (" 12 ", 12),
        ("", None),
        ("abc", None),
        ("12abc", None),  # unlike parseInt, Integer() refuses trailing garbage
        ("08", None),  # not a valid octal number
        ("1__0", None),
        ("_1", None),
        ("details", None),
    ],
)
def test_parse_ruby_integer(text: str, expected: int | None) -> None:
    assert parse_ruby_integer(text) == expected


@given(st.integers())
def test_parse_ruby_integer_reads_any_decimal_integer(value: int) -> None:
    assert parse_ruby_integer(str(value)) == value


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/details/0", 0),
        ("/details/5/", 5),  # Ruby's split drops trailing empty fields
        ("/details/1/2", 2),
        ("/details", None),
        ("/details/", None),
        ("/details/abc", None),
    ],
)
def test_product_id_from_path(path: str, expected: int | None) -> None:
    assert product_id_from_path(path) == expected


def test_default_book_is_the_originals_record_in_its_key_order() -> None:
    assert json.dumps(default_book(7), separators=(",", ":")) == (
        '{"id":7,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,'
        '"publisher":"PublisherA","language":"English","ISBN-10":"1234567890",'
        '"ISBN-13":"123-1234567890"}'
    )


def test_book_from_volumes_maps_the_first_volume() -> None:
    assert list(book_from_volumes(3, VOLUMES_ANSWER).items()) == [
        ("id", 3),
        ("author", "William Shakespeare"),
        ("year", "2002-09-27"),
        ("type", "paperback"),
        ("pages", 80),
        ("publisher", "Dover Publications"),
        ("language", "English"),
        ("ISBN-10", "0486424618"),
        ("ISBN-13", "9780486424613"),
    ]


def _volume_with(**changes: Any) -> dict[str, Any]:
    answer = copy.deepcopy(VOLUMES_ANSWER)
    volume = answer["items"][0]["volumeInfo"]
    for key, value in changes.items():
        if value is None:
            del volume[key]
        else:
            volume[key] = value
    return answer


def test_other_print_types_and_languages_are_unknown() -> None:
    book = book_from_volumes(0, _volume_with(printType="MAGAZINE", language="fr"))
    assert (book["type"], book["language"]) == ("unknown", "unknown")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"totalItems": 0}, "books API found no book with ISBN 0486424618"),
        ([], "books API found no book with ISBN 0486424618"),
        ({"items": [{"id": "x"}]}, "books API answer has no items[0].volumeInfo"),
        (_volume_with(authors=[]), "books API volumeInfo has no authors"),
        (_volume_with(authors=None), "books API volumeInfo has no authors"),
        (_volume_with(pageCount=None), "books API volumeInfo has no pageCount"),
        (_volume_with(publisher=None), "books API volumeInfo has no publisher"),
        (_volume_with(publishedDate=None), "books API volumeInfo has no publishedDate"),
        (
            _volume_with(industryIdentifiers=[{"type": "ISBN_13", "identifier": "978"}]),
            "books API volumeInfo has no ISBN_10 industry identifier",
        ),
        (
            _volume_with(industryIdentifiers=None),
            "books API volumeInfo has no ISBN_10 industry identifier",
        ),
    ],
)
def test_book_from_volumes_names_what_is_missing(answer: object, message: str) -> None:
    with pytest.raises(BookLookupError) as caught:
        book_from_volumes(0, answer)
    assert str(caught.value) == message


def test_settings_defaults_match_the_image() -> None:
    assert Settings.from_env({}) == Settings(False, "https://www.googleapis.com", 5.0)


def test_settings_v2_plain_http_and_overrides() -> None:
    env = {"ENABLE_EXTERNAL_BOOK_SERVICE": "true", "DO_NOT_ENCRYPT": "true"}
    assert Settings.from_env(env) == Settings(True, "http://www.googleapis.com", 5.0)
    env |= {"BOOKS_API_BASE_URL": "http://127.0.0.1:1/", "BOOKS_API_TIMEOUT_SECONDS": "0.5"}
    assert Settings.from_env(env) == Settings(True, "http://127.0.0.1:1", 0.5)


def test_settings_compare_true_exactly_like_ruby() -> None:
    assert not Settings.from_env(
        {"ENABLE_EXTERNAL_BOOK_SERVICE": "TRUE"}
    ).enable_external_book_service


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOOKS_API_BASE_URL": "ftp://x"}, "BOOKS_API_BASE_URL='ftp://x': must start with http"),
        ({"BOOKS_API_TIMEOUT_SECONDS": "soon"}, "BOOKS_API_TIMEOUT_SECONDS='soon': not a number"),
        ({"BOOKS_API_TIMEOUT_SECONDS": "0"}, "BOOKS_API_TIMEOUT_SECONDS='0': must be a positive"),
    ],
)
def test_settings_refuse_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + re.escape(message)):
        Settings.from_env(env)
