"""Pure: the details record of a book, fixed (v1) or mapped from a books API answer (v2).

Called by :mod:`bookinfo.details.app`. Key order matters: clients of the original see the
record in the order below (bookinfo-spec §4.2), and Python dicts keep insertion order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The one book Bookinfo sells; the v2 lookup asks the books API for this ISBN.
BOOK_ISBN = "0486424618"


class BookLookupError(Exception):
    """The books API answer cannot become a details record; ``str(exc)`` is the client's error."""


def default_book(product_id: int) -> dict[str, Any]:
    """The v1 record; only the id echoes the request."""
    return {
        "id": product_id,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    }


def book_from_volumes(product_id: int, payload: object) -> dict[str, Any]:
    """Map ``items[0].volumeInfo`` of a ``/books/v1/volumes`` answer to a details record.

    The original raises (and details answers 400) when authors or an ISBN is missing; we also
    refuse a record without year, pages or publisher instead of serving nulls.
    """
    volume = _volume_info(payload)
    authors = volume.get("authors")
    if not isinstance(authors, list) or not authors or not isinstance(authors[0], str):
        raise BookLookupError("books API volumeInfo has no authors")
    return {
        "id": product_id,
        "author": authors[0],
        "year": _required(volume, "publishedDate"),
        "type": "paperback" if volume.get("printType") == "BOOK" else "unknown",
        "pages": _required(volume, "pageCount"),
        "publisher": _required(volume, "publisher"),
        "language": "English" if volume.get("language") == "en" else "unknown",
        "ISBN-10": _isbn(volume, "ISBN_10"),
        "ISBN-13": _isbn(volume, "ISBN_13"),
    }


def _volume_info(payload: object) -> Mapping[str, Any]:
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list) or not items:
        raise BookLookupError("books API found no book with ISBN " + BOOK_ISBN)
    volume = items[0].get("volumeInfo") if isinstance(items[0], dict) else None
    if not isinstance(volume, dict):
        raise BookLookupError("books API answer has no items[0].volumeInfo")
    return volume


def _required(volume: Mapping[str, Any], field: str) -> Any:
    value = volume.get(field)
    if value is None:
        raise BookLookupError(f"books API volumeInfo has no {field}")
    return value


def _isbn(volume: Mapping[str, Any], kind: str) -> str:
    identifiers = volume.get("industryIdentifiers")
    if isinstance(identifiers, list):
        for entry in identifiers:
            if isinstance(entry, dict) and entry.get("type") == kind:
                identifier = entry.get("identifier")
                if isinstance(identifier, str):
                    return identifier
    raise BookLookupError(f"books API volumeInfo has no {kind} industry identifier")
