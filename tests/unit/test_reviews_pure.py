"""reviews' pure parts: the document, reading stars from a ratings answer, the id, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookinfo.reviews.document import (
    RATINGS_UNAVAILABLE,
    Ratings,
    reviews_document,
    stars_from_answer,
)
from bookinfo.reviews.product_id import parse_java_int
from bookinfo.reviews.settings import Settings, SettingsError

TEXT1 = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"
TEXT2 = (
    "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays "
    "by Shakespeare."
)


def test_v1_document_has_no_ratings_and_a_string_id() -> None:
    assert reviews_document(0, "reviews-v1-abc", "null", None) == {
        "id": "0",
        "podname": "reviews-v1-abc",
        "clustername": "null",
        "reviews": [
            {"reviewer": "Reviewer1", "text": TEXT1},
            {"reviewer": "Reviewer2", "text": TEXT2},
        ],
    }


def test_ratings_document_shows_stars_or_the_error_per_reviewer() -> None:
    document = reviews_document(4, "p", "east", Ratings("red", {"Reviewer1": 0}))
    assert document["clustername"] == "east"
    assert [review["rating"] for review in document["reviews"]] == [
        {"stars": 0, "color": "red"},  # 0 stays a number; productpage decides not to draw it
        {"error": RATINGS_UNAVAILABLE},
    ]


@pytest.mark.parametrize(
    ("answer", "stars"),
    [
        ({"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}, {"Reviewer1": 5, "Reviewer2": 4}),
        ({"ratings": {"Reviewer2": 1, "Reviewer3": 2}}, {"Reviewer2": 1}),
        ({"ratings": {"Reviewer1": 3.7, "Reviewer2": "4"}}, {"Reviewer1": 3}),
        ({"ratings": {"Reviewer1": True}}, {}),
        ({"error": "could not connect to ratings database"}, {}),
        ({"ratings": [5, 4]}, {}),
        ([5, 4], {}),
        (None, {}),
    ],
)
def test_stars_from_answer(answer: object, stars: dict[str, int]) -> None:
    assert stars_from_answer(answer) == stars


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("+5", 5), ("-5", -5), ("007", 7), ("2147483647", 2**31 - 1)]
    + [("2147483648", None), ("1.5", None), ("abc", None), ("", None), ("1e3", None)],
)
def test_parse_java_int(text: str, expected: int | None) -> None:
    assert parse_java_int(text) == expected


@given(st.integers(-(2**31), 2**31 - 1))
def test_parse_java_int_reads_every_int(value: int) -> None:
    assert parse_java_int(str(value)) == value


def test_settings_defaults_are_v1() -> None:
    settings = Settings.from_env({})
    assert settings == Settings(False, "black", "http://ratings:9080/ratings", "null", "null")
    assert settings.ratings_timeout == 10.0


def test_settings_v3_image() -> None:
    env = {
        "ENABLE_RATINGS": "TRUE",  # Boolean.valueOf ignores case
        "STAR_COLOR": "red",
        "SERVICES_DOMAIN": "default.svc.cluster.local",
        "RATINGS_HOSTNAME": "ratings-x",
        "RATINGS_SERVICE_PORT": "9081",
        "HOSTNAME": "reviews-v3-1",
        "CLUSTER_NAME": "west",
    }
    settings = Settings.from_env(env)
    assert settings == Settings(
        True,
        "red",
        "http://ratings-x.default.svc.cluster.local:9081/ratings",
        "reviews-v3-1",
        "west",
    )
    assert settings.ratings_timeout == 2.5


@pytest.mark.parametrize("value", ["yes", "1", "on", ""])
def test_only_true_enables_ratings(value: str) -> None:
    assert not Settings.from_env({"ENABLE_RATINGS": value}).enable_ratings


def test_settings_refuse_a_bad_port() -> None:
    with pytest.raises(SettingsError, match="RATINGS_SERVICE_PORT='http': not a TCP port"):
        Settings.from_env({"RATINGS_SERVICE_PORT": "http"})
