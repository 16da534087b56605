"""ratings' pure parts: routing and parseInt, fault plans from injected draws and time, settings."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bookinfo.ratings.faults import FaultSettings, Mode, Plan, is_healthy, mode_of, plan_ratings
from bookinfo.ratings.routing import Match, Route, match_request, parse_js_int
from bookinfo.ratings.settings import MySqlSettings, Settings, SettingsError
from bookinfo.ratings.store import RatingsStore

FAULTS = FaultSettings(probability=0.3, delay=1.5, unavailable_period=10, unhealthy_period=20)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12abc", 12),
        ("7?x=1", 7),
        ("  -3", -3),
        ("0x1f", 31),
        ("-0x10", -16),
        ("0x", None),
        ("1e3", 1),
        ("", None),
        ("abc", None),
        ("+", None),
    ],
)
def test_parse_js_int(text: str, expected: int | None) -> None:
    assert parse_js_int(text) == expected


@given(st.integers())
def test_parse_js_int_reads_any_decimal_integer(value: int) -> None:
    assert parse_js_int(str(value)) == value


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", "/health", Match(Route.HEALTH)),
        ("GET", "/health?probe=1", Match(Route.HEALTH)),
        ("POST", "/health", Match(Route.NOT_FOUND)),
        ("GET", "/health/", Match(Route.NOT_FOUND)),
        ("GET", "/ratings/0", Match(Route.RATINGS, 0)),
        ("POST", "/ratings/3", Match(Route.RATINGS, 3)),
        ("GET", "/ratings/12abc", Match(Route.RATINGS, 12)),
        ("GET", "/ratings/7?x=1", Match(Route.RATINGS, 7)),
        ("GET", "/ratings/abc?u=/9", Match(Route.RATINGS, 9)),  # the id is the raw URL's tail
        ("GET", "/ratings/1/x", Match(Route.RATINGS, None)),
        ("GET", "/ratings/", Match(Route.RATINGS, None)),
        ("GET", "/ratings/abc", Match(Route.RATINGS, None)),
        ("GET", "/ratings", Match(Route.NOT_FOUND)),
        ("GET", "/ratingsx/1", Match(Route.NOT_FOUND)),
        ("GET", "/", Match(Route.NOT_FOUND)),
        ("PUT", "/ratings/1", Match(Route.METHOD_NOT_ALLOWED)),
        ("DELETE", "/nowhere", Match(Route.METHOD_NOT_ALLOWED)),
        ("HEAD", "/health", Match(Route.METHOD_NOT_ALLOWED)),
        ("GET", "http://ratings:9080/ratings/4?a=b", Match(Route.RATINGS, 4)),
        ("GET", "http://ratings:9080/health", Match(Route.HEALTH)),
        ("GET", "http://ratings:9080", Match(Route.NOT_FOUND)),
        ("GET", "/ratings/http://x/5", Match(Route.RATINGS, 5)),
    ],
)
def test_match_request(method: str, url: str, expected: Match) -> None:
    assert match_request(method, url) == expected


@pytest.mark.parametrize(
    ("version", "mode"),
    [
        ("v1", Mode.IN_MEMORY),
        ("", Mode.IN_MEMORY),
        ("v3", Mode.IN_MEMORY),
        ("V2", Mode.IN_MEMORY),
        ("v2", Mode.DATABASE),
        ("v-faulty", Mode.FAULTY),
        ("v-delayed", Mode.DELAYED),
        ("v-unavailable", Mode.UNAVAILABLE),
        ("v-unhealthy", Mode.UNHEALTHY),
    ],
)
def test_mode_of(version: str, mode: Mode) -> None:
    assert mode_of(version) is mode


@pytest.mark.parametrize(
    ("mode", "draw", "elapsed", "plan"),
    [
        (Mode.IN_MEMORY, 0.0, 15, Plan()),
        (Mode.FAULTY, 0.29, 0, Plan(unavailable=True)),
        (Mode.FAULTY, 0.3, 0, Plan()),
        (Mode.DELAYED, 0.0, 0, Plan(delay=1.5)),
        (Mode.DELAYED, 0.99, 0, Plan()),
        (Mode.UNAVAILABLE, 0.0, 0, Plan()),
        (Mode.UNAVAILABLE, 0.0, 9.99, Plan()),
        (Mode.UNAVAILABLE, 0.0, 10, Plan(unavailable=True)),
        (Mode.UNAVAILABLE, 0.0, 19.99, Plan(unavailable=True)),
        (Mode.UNAVAILABLE, 0.0, 20, Plan()),
        (Mode.UNAVAILABLE, 0.0, 35, Plan(unavailable=True)),
        (Mode.UNHEALTHY, 0.0, 19, Plan()),
        (Mode.UNHEALTHY, 0.0, 21, Plan(unavailable=True)),
        (Mode.UNHEALTHY, 0.0, 41, Plan()),
    ],
)
def test_plan_ratings(mode: Mode, draw: float, elapsed: float, plan: Plan) -> None:
    assert plan_ratings(mode, FAULTS, draw, elapsed) == plan


@pytest.mark.parametrize("draw", [0.0, 0.5, 0.999999])
def test_probability_zero_never_faults_and_one_always_does(draw: float) -> None:
    never, always = FaultSettings(probability=0.0), FaultSettings(probability=1.0)
    assert plan_ratings(Mode.FAULTY, never, draw, 0) == Plan()
    assert plan_ratings(Mode.FAULTY, always, draw, 0) == Plan(unavailable=True)


def test_only_v_unhealthy_is_ever_unhealthy() -> None:
    assert [is_healthy(Mode.UNHEALTHY, FAULTS, t) for t in (0, 19, 20, 39, 40)] == [
        True,
        True,
        False,
        False,
        True,
    ]
    assert all(is_healthy(mode, FAULTS, 25) for mode in Mode if mode is not Mode.UNHEALTHY)


def test_store_answers_the_default_until_a_post() -> None:
    store = RatingsStore()
    assert store.get(1) == {"id": 1, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}
    assert store.put(1, {"Reviewer1": 1}) == {"id": 1, "ratings": {"Reviewer1": 1}}
    assert store.get(1) == {"id": 1, "ratings": {"Reviewer1": 1}}
    assert store.get(2)["ratings"] == {"Reviewer1": 5, "Reviewer2": 4}


def test_settings_defaults_are_the_manifests_values() -> None:
    settings = Settings.from_env({})
    assert settings.service_version == "v1"
    assert settings.mysql == MySqlSettings("mysqldb", 3306, "root", "password")
    assert settings.mongo_url == "mongodb://mongodb:27017/test"
    assert settings.faults == FaultSettings(0.5, 7.0, 60.0, 900.0)
    assert settings.db_timeout == 2.0


def test_settings_read_every_variable() -> None:
    env = {
        "SERVICE_VERSION": "v2",
        "DB_TYPE": "mysql",
        "MYSQL_DB_HOST": "db",
        "MYSQL_DB_PORT": "3307",
        "MYSQL_DB_USER": "u",
        "MYSQL_DB_PASSWORD": "p",
        "MONGO_DB_URL": "mongodb://m/test",
        "RATINGS_FAULT_PROBABILITY": "1",
        "RATINGS_DELAY_SECONDS": "0.25",
        "RATINGS_UNAVAILABLE_PERIOD_SECONDS": "2",
        "RATINGS_UNHEALTHY_PERIOD_SECONDS": "3",
        "RATINGS_DB_TIMEOUT_SECONDS": "0.5",
    }
    assert Settings.from_env(env) == Settings(
        "v2",
        "mysql",
        MySqlSettings("db", 3307, "u", "p"),
        "mongodb://m/test",
        FaultSettings(1.0, 0.25, 2.0, 3.0),
        0.5,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MYSQL_DB_PORT": "x"}, "MYSQL_DB_PORT='x': not a TCP port"),
        ({"MYSQL_DB_PORT": "70000"}, "MYSQL_DB_PORT='70000': not a TCP port"),
        ({"RATINGS_FAULT_PROBABILITY": "half"}, "RATINGS_FAULT_PROBABILITY='half': not a number"),
        (
            {"RATINGS_FAULT_PROBABILITY": "1.5"},
            "RATINGS_FAULT_PROBABILITY='1.5': must be a finite number between 0 and 1",
        ),
        (
            {"RATINGS_DELAY_SECONDS": "-1"},
            "RATINGS_DELAY_SECONDS='-1': must be a finite number at least 0",
        ),
        (
            {"RATINGS_DELAY_SECONDS": "inf"},
            "RATINGS_DELAY_SECONDS='inf': must be a finite number at least 0",
        ),
        (
            {"RATINGS_UNAVAILABLE_PERIOD_SECONDS": "0"},
            "RATINGS_UNAVAILABLE_PERIOD_SECONDS='0': must be a positive number of seconds",
        ),
    ],
)
def test_settings_refuse_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match="^" + re.escape(message) + "$"):
        Settings.from_env(env)
