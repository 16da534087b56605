"""The image catalog: which local program stands for a container image on the local mesh.

Pure data and pure functions. ``canarymesh apply`` looks up every container image of a Deployment
with :func:`resolve_image` and gets a recipe: a Bookinfo service run as ``python -m
bookinfo.<service>`` with the environment the image would have set (the build args of Istio's
``docker-bake.hcl``), a local MariaDB for ``mysqldb``, or ``mongod`` for ``mongodb``. The
Deployment's own ``env`` is applied on top by the caller, as Kubernetes does over an image's ENV.

Our images (``ghcr.io/canary-mesh/examples-bookinfo-<service>-<version>``) and Istio's
(``docker.io/istio/...``, ``istio/...``, ``registry.istio.io/release/...``) resolve alike, with
any tag or digest, so Istio's own sample manifests apply unchanged.

Two images of other projects' examples are played by stand-ins
(:mod:`canarymesh.runtime.local.standins`), so Argo Rollouts' examples run unchanged:
``nginx`` (Docker Hub's library image, default configuration) and ``argoproj/rollouts-demo``,
whose tag (``blue``, ``bad-red``, ``slow-yellow``) sets what the demo app answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from canarymesh.errors import ConfigError

__all__ = [
    "IMAGES",
    "REGISTRIES",
    "MariaDbRecipe",
    "MongoRecipe",
    "PythonService",
    "Recipe",
    "catalog_recipe",
    "resolve_image",
    "unknown_image_message",
]

REGISTRIES = (
    "ghcr.io/canary-mesh/",
    "docker.io/istio/",
    "registry.istio.io/release/",
    "istio/",  # Docker Hub's short form
)
_PREFIX = "examples-bookinfo-"


@dataclass(frozen=True, slots=True)
class PythonService:
    """A Bookinfo service: ``python -m <module> <port> --host <host>`` with ``env``.

    In a pod network it binds every address of the pod, as the image does; on the shared
    network only the loopback, where its sidecar reaches it."""

    module: str
    env: Mapping[str, str] = field(default_factory=dict)
    # The image's non-root user, taken when a Deployment asks for runAsNonRoot without a uid.
    user: int = 1000

    def argv(self, python: str, port: int, host: str = "127.0.0.1") -> list[str]:
        return [python, "-m", self.module, str(port), "--host", host]


@dataclass(frozen=True, slots=True)
class MariaDbRecipe:
    """Bookinfo's ``mysqldb`` image, played by Debian's MariaDB, seeded like the image."""

    binary: str = "/usr/sbin/mariadbd"
    install_db: str = "/usr/bin/mariadb-install-db"
    # Seed data shipped with ratings (the image runs the same file at its first start).
    init_sql: str = "bookinfo/ratings/mysqldb-init.sql"
    # Small buffers: the defaults allocate ~250 MB for a database of two rows.
    tuning: tuple[str, ...] = (
        "--innodb-log-file-size=4M",
        "--innodb-buffer-pool-size=16M",
        "--skip-name-resolve",
        "--skip-log-bin",
    )

    def install_argv(self, datadir: Path, as_root: bool = False) -> list[str]:
        """Create an empty data directory (``as_root``: mariadbd refuses root without it)."""
        return [
            self.install_db,
            "--no-defaults",
            f"--datadir={datadir}",
            *(["--user=root"] if as_root else []),
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
            *self.tuning[:2],
        ]

    def argv(
        self,
        datadir: Path,
        port: int,
        socket: Path,
        init_file: Path,
        as_root: bool = False,
        bind: str = "127.0.0.1",
    ) -> list[str]:
        """``init_file`` holds :meth:`init_script`; it runs at every start, so it is idempotent."""
        return [
            self.binary,
            "--no-defaults",
            *(["--user=root"] if as_root else []),
            f"--datadir={datadir}",
            f"--socket={socket}",
            f"--port={port}",
            f"--bind-address={bind}",
            f"--pid-file={datadir / 'mariadbd.pid'}",
            f"--init-file={init_file}",
            *self.tuning,
        ]

    def init_script(self, root_password: str, seed_sql: str) -> str:
        """Set root's password (the image's MYSQL_ROOT_PASSWORD) and load the seed data.

        Like the image (MYSQL_ROOT_HOST defaults to ``%``), root may connect from anywhere: in a
        pod network clients arrive from the sidecar (127.0.0.6), not from 127.0.0.1."""
        quoted = root_password.replace("\\", "\\\\").replace("'", "\\'")
        users = "".join(
            f"ALTER USER 'root'@'{host}' IDENTIFIED BY '{quoted}';\n"
            for host in ("localhost", "127.0.0.1")
        )
        users += (
            f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '{quoted}';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\n"
        )
        return users + seed_sql


@dataclass(frozen=True, slots=True)
class MongoRecipe:
    """Bookinfo's ``mongodb`` image, played by a local ``mongod`` if one is installed."""

    binary: str = "mongod"
    seed: str = "bookinfo/ratings/mongodb-seed.json"

    def argv(self, dbpath: Path, port: int) -> list[str]:
        return [self.binary, "--dbpath", str(dbpath), "--port", str(port), "--bind_ip", "127.0.0.1"]


Recipe = PythonService | MariaDbRecipe | MongoRecipe


def _reviews(version: str, ratings: bool, color: str) -> PythonService:
    env = {"SERVICE_VERSION": version, "ENABLE_RATINGS": str(ratings).lower(), "STAR_COLOR": color}
    return PythonService("bookinfo.reviews", env)


def _ratings(version: str) -> PythonService:
    return PythonService("bookinfo.ratings", {"SERVICE_VERSION": version})


def _details(version: str, external: bool) -> PythonService:
    env = {"SERVICE_VERSION": version, "ENABLE_EXTERNAL_BOOK_SERVICE": str(external).lower()}
    return PythonService("bookinfo.details", env)


# Image name after ``examples-bookinfo-`` -> recipe; the env mirrors each image's build args.
IMAGES: Mapping[str, Recipe] = {
    "productpage-v1": PythonService("bookinfo.productpage", {"FLOOD_FACTOR": "0"}),
    "productpage-v-flooding": PythonService("bookinfo.productpage", {"FLOOD_FACTOR": "100"}),
    "details-v1": _details("v1", external=False),
    "details-v2": _details("v2", external=True),
    "reviews-v1": _reviews("v1", ratings=False, color="black"),
    "reviews-v2": _reviews("v2", ratings=True, color="black"),
    "reviews-v3": _reviews("v3", ratings=True, color="red"),
    "ratings-v1": _ratings("v1"),
    "ratings-v2": _ratings("v2"),
    "ratings-v-faulty": _ratings("v-faulty"),
    "ratings-v-delayed": _ratings("v-delayed"),
    "ratings-v-unavailable": _ratings("v-unavailable"),
    "ratings-v-unhealthy": _ratings("v-unhealthy"),
    "mysqldb": MariaDbRecipe(),
    "mongodb": MongoRecipe(),
}


_STANDINS = "canarymesh.runtime.local.standins"
_NGINX = frozenset({"nginx", "library/nginx", "docker.io/nginx", "docker.io/library/nginx"})
_ROLLOUTS_DEMO = frozenset({"argoproj/rollouts-demo", "docker.io/argoproj/rollouts-demo"})
# The published rollouts-demo images: bad-<color> built with ERROR_RATE=15, slow-<color> with
# LATENCY=2 (the demo's release.sh).
_DEMO_VARIANTS = {"bad-": {"ERROR_RATE": "15"}, "slow-": {"LATENCY": "2"}}


def _stand_in(repository: str, tag: str) -> Recipe | None:
    """A stand-in's recipe for another project's example image (its tag sets its env)."""
    if repository in _NGINX:
        version = tag.split("-", 1)[0] if tag[:1].isdigit() else "1.27"
        return PythonService(f"{_STANDINS}.nginx", {"NGINX_VERSION": version}, user=101)
    if repository in _ROLLOUTS_DEMO:
        env: dict[str, str] = {}
        for prefix, variant in _DEMO_VARIANTS.items():
            if tag.startswith(prefix):
                env.update(variant)
                tag = tag.removeprefix(prefix)
        env["COLOR"] = "" if tag == "latest" else tag
        return PythonService(f"{_STANDINS}.rollouts_demo", env)
    return None


def catalog_recipe(image: str, extra: Mapping[str, Recipe] | None = None) -> Recipe | None:
    """The recipe for ``image`` if the catalog (or ``extra``, full names without tag) has one."""
    if not image.strip():
        return None
    repository = _repository(image)
    if extra and repository in extra:
        return extra[repository]
    found = _stand_in(repository, _tag(image))
    if found is not None:
        return found
    for registry in REGISTRIES:
        name = repository.removeprefix(registry)
        if name != repository and name.startswith(_PREFIX):
            recipe = IMAGES.get(name.removeprefix(_PREFIX))
            if recipe is not None:
                return recipe
    return None


def unknown_image_message(image: str) -> str:
    known = ", ".join(sorted(IMAGES))
    return (
        f"image {image!r} has no local equivalent: the local mesh runs images named"
        f" <registry>/{_PREFIX}<name>:<tag> from {', '.join(r.rstrip('/') for r in REGISTRIES)}"
        f" with <name> one of: {known}; and nginx and argoproj/rollouts-demo"
    )


def resolve_image(image: str, extra: Mapping[str, Recipe] | None = None) -> Recipe:
    """The recipe for ``image``; ConfigError naming the image when the catalog has none."""
    recipe = catalog_recipe(image, extra)
    if recipe is None:
        raise ConfigError(
            unknown_image_message(image) + "; or give the container a `command:` (and `args:`)"
            " to run a local program as it"
        )
    return recipe


def _tag(image: str) -> str:
    """``1.19-alpine`` of ``nginx:1.19-alpine``; ``latest`` when there is none."""
    name = image.strip().split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def _repository(image: str) -> str:
    """``docker.io/istio/examples-bookinfo-reviews-v2`` from ``...reviews-v2:1.20@sha256:...``."""
    name = image.strip().split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name[: name.rfind(":")]
    if not name:
        raise ConfigError(f"image {image!r} is empty")
    return name
