"""The products productpage knows about (only one, as in the original). Pure data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    title: str
    # Trusted HTML written here, rendered unescaped (the original does the same).
    description_html: str

    def as_json(self) -> dict[str, object]:
        """The shape of ``/api/v1/products`` items (swagger ``Product``)."""
        return {"id": self.id, "title": self.title, "descriptionHtml": self.description_html}


PRODUCTS: tuple[Product, ...] = (
    Product(
        id=0,
        title="The Comedy of Errors",
        description_html=(
            '<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: '
            "The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his "
            "shortest and one of his most farcical comedies, with a major part of the humour "
            "coming from slapstick and mistaken identity, in addition to puns and word play."
        ),
    ),
)

# /productpage always shows product 0, whatever the query string says (spec §4.1).
PAGE_PRODUCT = PRODUCTS[0]
