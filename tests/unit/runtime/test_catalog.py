"""The image catalog maps our and Istio's Bookinfo images to local programs and their env."""

from __future__ import annotations

from pathlib import Path

import pytest

from canarymesh.errors import ConfigError
from canarymesh.runtime.local.catalog import (
    MariaDbRecipe,
    MongoRecipe,
    PythonService,
    resolve_image,
)


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/canary-mesh/examples-bookinfo-reviews-v3:1.0.0",
        "docker.io/istio/examples-bookinfo-reviews-v3:1.20.3",
        "istio/examples-bookinfo-reviews-v3:1.20.3",
        "registry.istio.io/release/examples-bookinfo-reviews-v3:1.20.3@sha256:" + "a" * 64,
        "docker.io/istio/examples-bookinfo-reviews-v3",
    ],
)
def test_every_registry_spelling_of_reviews_v3_runs_red_stars_with_ratings(image: str) -> None:
    recipe = resolve_image(image)
    assert recipe == PythonService(
        "bookinfo.reviews",
        {"SERVICE_VERSION": "v3", "ENABLE_RATINGS": "true", "STAR_COLOR": "red"},
    )


@pytest.mark.parametrize(
    ("name", "module", "env"),
    [
        ("reviews-v1", "bookinfo.reviews", {"ENABLE_RATINGS": "false", "STAR_COLOR": "black"}),
        ("reviews-v2", "bookinfo.reviews", {"ENABLE_RATINGS": "true", "STAR_COLOR": "black"}),
        ("details-v2", "bookinfo.details", {"ENABLE_EXTERNAL_BOOK_SERVICE": "true"}),
        ("details-v1", "bookinfo.details", {"ENABLE_EXTERNAL_BOOK_SERVICE": "false"}),
        ("ratings-v2", "bookinfo.ratings", {"SERVICE_VERSION": "v2"}),
        ("ratings-v-faulty", "bookinfo.ratings", {"SERVICE_VERSION": "v-faulty"}),
        ("ratings-v-delayed", "bookinfo.ratings", {"SERVICE_VERSION": "v-delayed"}),
        ("ratings-v-unavailable", "bookinfo.ratings", {"SERVICE_VERSION": "v-unavailable"}),
        ("ratings-v-unhealthy", "bookinfo.ratings", {"SERVICE_VERSION": "v-unhealthy"}),
        ("productpage-v-flooding", "bookinfo.productpage", {"FLOOD_FACTOR": "100"}),
        ("productpage-v1", "bookinfo.productpage", {"FLOOD_FACTOR": "0"}),
    ],
)
def test_image_env_matches_the_images_build_args(
    name: str, module: str, env: dict[str, str]
) -> None:
    recipe = resolve_image(f"docker.io/istio/examples-bookinfo-{name}:1.20.3")
    assert isinstance(recipe, PythonService)
    assert recipe.module == module
    assert env.items() <= recipe.env.items()
    assert recipe.argv("/py", 9080) == ["/py", "-m", module, "9080", "--host", "127.0.0.1"]


def test_databases_map_to_local_server_recipes(tmp_path: Path) -> None:
    mysql = resolve_image("docker.io/istio/examples-bookinfo-mysqldb:1.20.3")
    assert isinstance(mysql, MariaDbRecipe)
    argv = mysql.argv(tmp_path / "data", 3306, tmp_path / "s.sock", tmp_path / "init.sql")
    assert argv[0] == "/usr/sbin/mariadbd"
    assert "--bind-address=127.0.0.1" in argv and "--port=3306" in argv
    assert f"--init-file={tmp_path / 'init.sql'}" in argv
    mongo = resolve_image("ghcr.io/canary-mesh/examples-bookinfo-mongodb:1.0.0")
    assert isinstance(mongo, MongoRecipe)
    assert mongo.argv(tmp_path, 27017)[-2:] == ["--bind_ip", "127.0.0.1"]


@pytest.mark.parametrize(
    "image",
    [
        "httpd:2.4",
        "docker.io/istio/examples-bookinfo-reviews-v9:1.20.3",
        "quay.io/someone/examples-bookinfo-reviews-v1:1.0",
    ],
)
def test_unknown_image_is_a_config_error_that_says_how_to_map_it(image: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_image(image)
    message = str(err.value)
    assert repr(image) in message
    assert "reviews-v3" in message and "ghcr.io/canary-mesh" in message
    # What to do instead: run a program of the user's own as the container.
    assert "command" in message


def test_extra_mappings_take_an_image_without_its_tag() -> None:
    mine = PythonService("myapp", {"MODE": "local"})
    assert resolve_image("quay.io/me/myapp:2.1", extra={"quay.io/me/myapp": mine}) is mine


def test_a_registry_port_is_not_mistaken_for_a_tag() -> None:
    with pytest.raises(ConfigError, match="'localhost:5000/examples-bookinfo-x'"):
        resolve_image("localhost:5000/examples-bookinfo-x")


def test_mariadb_init_script_quotes_the_password_and_keeps_the_seed() -> None:
    script = MariaDbRecipe().init_script("it's\\secret", "CREATE DATABASE test;\n")
    assert "ALTER USER 'root'@'localhost' IDENTIFIED BY 'it\\'s\\\\secret';" in script
    assert "ALTER USER 'root'@'127.0.0.1'" in script
    assert script.endswith("CREATE DATABASE test;\n")
    assert "--user=root" in MariaDbRecipe().argv(Path("d"), 1, Path("s"), Path("i"), as_root=True)
    assert "--user=root" not in MariaDbRecipe().install_argv(Path("d"))
