"""productpage's outgoing headers, its settings, its session cookie and its avatar (pure parts)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from multidict import CIMultiDict

from bookinfo.common.proxy import proxy_for
from bookinfo.productpage.avatar import AVATAR_PATH, render_avatar
from bookinfo.productpage.headers import VERBATIM_HEADERS, outgoing_headers
from bookinfo.productpage.session import SessionCodec
from bookinfo.productpage.settings import DEFAULT_SECRET_KEY, Settings, SettingsError


def test_verbatim_headers_are_copied_and_others_dropped() -> None:
    incoming = CIMultiDict({name.upper(): f"v-{name}" for name in VERBATIM_HEADERS})
    incoming["Host"] = "productpage:9080"
    incoming["X-Forwarded-For"] = "10.0.0.1"
    incoming["Content-Length"] = "0"
    out = outgoing_headers(incoming, None)
    assert out == {name: f"v-{name}" for name in VERBATIM_HEADERS}


def test_end_user_comes_from_the_session_only() -> None:
    incoming = CIMultiDict({"end-user": "jason", "x-request-id": "r"})
    assert outgoing_headers(incoming, None) == {"x-request-id": "r"}
    assert outgoing_headers(incoming, "alice")["end-user"] == "alice"


def test_b3_is_re_encoded_not_copied() -> None:
    incoming = CIMultiDict(
        {"x-b3-traceid": "463ac35c9f6413ad", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-flags": "1"}
    )
    assert outgoing_headers(incoming, None) == {
        "x-b3-traceid": "0000000000000000463ac35c9f6413ad",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-sampled": "1",
    }


def test_settings_defaults_are_the_images() -> None:
    settings = Settings.from_env({})
    assert settings.details_url == "http://details:9080"
    assert settings.reviews_url == "http://reviews:9080"
    assert settings.ratings_url == "http://ratings:9080"
    assert settings.flood_factor == 0
    assert settings.secret_key == DEFAULT_SECRET_KEY
    assert settings == Settings()


def test_settings_from_istio_variables() -> None:
    settings = Settings.from_env(
        {
            "SERVICES_DOMAIN": "default.svc.cluster.local",
            "DETAILS_HOSTNAME": "details-v2",
            "DETAILS_SERVICE_PORT": "8080",
            "REVIEWS_SERVICE_PORT": "9081",
            "RATINGS_HOSTNAME": "ratings-v1",
            "FLOOD_FACTOR": "100",
            "PRODUCTPAGE_SECRET_KEY": "s3cret",
        }
    )
    assert settings.details_url == "http://details-v2.default.svc.cluster.local:8080"
    assert settings.reviews_url == "http://reviews.default.svc.cluster.local:9081"
    assert settings.ratings_url == "http://ratings-v1.default.svc.cluster.local:9080"
    assert settings.flood_factor == 100
    assert settings.secret_key == "s3cret"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOOD_FACTOR": "many"}, "FLOOD_FACTOR='many': expected an integer"),
        ({"FLOOD_FACTOR": "-1"}, "FLOOD_FACTOR='-1': must be at least 0"),
        ({"DETAILS_SERVICE_PORT": "0"}, "DETAILS_SERVICE_PORT='0': must be at least 1"),
        ({"RATINGS_SERVICE_PORT": "70000"}, "RATINGS_SERVICE_PORT='70000': must be at most 65535"),
    ],
)
def test_settings_reject_bad_values(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert str(err.value) == message


def test_session_round_trip_and_tampering() -> None:
    codec = SessionCodec("key")
    cookie = codec.dump("jason")
    assert codec.load(cookie) == "jason"
    assert SessionCodec("key").load(cookie) == "jason"  # another replica with the same key
    assert SessionCodec("other key").load(cookie) is None
    assert codec.load(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) is None
    assert codec.load("") is None
    assert codec.load(None) is None
    assert codec.load("not.a.cookie") is None


def test_session_refuses_names_that_cannot_be_headers() -> None:
    codec = SessionCodec("key")
    for bad in ("", "   ", "ja\r\nson", "x" * 257):
        with pytest.raises(ValueError):
            codec.dump(bad)


def test_committed_avatar_is_what_the_drawer_draws() -> None:
    assert AVATAR_PATH.read_bytes() == render_avatar()
    assert AVATAR_PATH.stat().st_size < 10_000


def test_importing_the_package_reads_no_environment() -> None:
    # Third-party libraries may look at the environment when imported; only ours must not.
    code = (
        "import os, aiohttp, aiohttp.web, jinja2, prometheus_client, itsdangerous, uvloop, yarl\n"
        "class Spy(dict):\n"
        "    def __getitem__(self, k): raise SystemExit('read ' + k)\n"
        "    def get(self, k, d=None): raise SystemExit('read ' + k)\n"
        "os.environ = Spy(os.environ)\n"
        "import bookinfo.productpage.app, bookinfo.productpage.__main__\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("env", "host", "expected"),
    [
        ({}, "reviews", None),
        ({"HTTP_PROXY": "http://127.0.0.1:15001"}, "reviews", "http://127.0.0.1:15001"),
        ({"http_proxy": "127.0.0.1:15001"}, "reviews", "http://127.0.0.1:15001"),
        ({"http_proxy": "http://a:1", "HTTP_PROXY": "http://b:2"}, "reviews", "http://a:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, "reviews", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "details, reviews"}, "reviews", None),
        (
            {"HTTP_PROXY": "http://p:1", "no_proxy": ".svc.cluster.local"},
            "a.svc.cluster.local",
            None,
        ),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "cluster.local:80"}, "a.cluster.local", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "view"}, "reviews", "http://p:1"),
        ({"HTTPS_PROXY": "http://p:1"}, "reviews", None),
    ],
)
def test_proxy_rules(env: dict[str, str], host: str, expected: str | None) -> None:
    assert proxy_for(host, env) == expected


def test_settings_resolve_each_backends_proxy_once() -> None:
    env = {"HTTP_PROXY": "http://127.0.0.1:15001", "NO_PROXY": "ratings", "REVIEWS_HOSTNAME": "r"}
    settings = Settings.from_env(env)
    assert settings.proxy("http://details:9080") == "http://127.0.0.1:15001"
    assert settings.proxy("http://r:9080") == "http://127.0.0.1:15001"
    assert settings.proxy("http://ratings:9080") is None
