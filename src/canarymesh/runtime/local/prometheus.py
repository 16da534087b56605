"""The local mesh's Prometheus: Debian's binary as a supervised child, its config and targets.

``canarymesh up`` builds a :class:`LocalPrometheus` in the state directory and hands
:meth:`LocalPrometheus.spec` to the supervisor; whenever pods come and go it calls
:meth:`LocalPrometheus.set_targets`, which rewrites a ``file_sd`` file that Prometheus watches, so
no restart or reload is needed. Queries go through the one client both runtimes share,
:class:`canarymesh.ports.prometheus.PrometheusClient`.

A new Prometheus scrapes for the first time about 5 s after it starts, and a ``rate()`` over a
``[5s]`` window is only accurate some 11 s after start (measured in envoy-notes, section 5).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from canarymesh.errors import ConfigError
from canarymesh.runtime.local.supervisor import HttpProbe, ProcessSpec

__all__ = ["LocalPrometheus", "ScrapeJob", "TargetGroup", "render_config"]

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")

# The scrape job of the canary controller's own metrics (canarymesh_rollout_*).
CONTROLLER_JOB = "canarymesh-controller"


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """A ``file_sd`` group: ``host:port`` targets sharing labels (e.g. the pod's workload)."""

    targets: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScrapeJob:
    name: str
    metrics_path: str = "/metrics"
    targets: tuple[TargetGroup, ...] = ()
    metric_relabel_configs: tuple[Mapping[str, object], ...] = ()
    # Pod networks: the host reaches the pods' stats only through the scrape proxy.
    proxy_url: str | None = None


def render_config(
    jobs: Sequence[ScrapeJob], sd_dir: Path, scrape_interval: str = "1s"
) -> dict[str, object]:
    """The ``prometheus.yml`` content: one ``file_sd`` source per job, files under ``sd_dir``."""
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ConfigError(f"scrape job names must be unique: {names}")
    scrape_configs = []
    for job in jobs:
        scrape: dict[str, object] = {
            "job_name": job.name,
            "metrics_path": job.metrics_path,
            "file_sd_configs": [{"files": [str(targets_path(sd_dir, job.name))]}],
        }
        if job.proxy_url:
            scrape["proxy_url"] = job.proxy_url
        if job.metric_relabel_configs:
            scrape["metric_relabel_configs"] = [dict(c) for c in job.metric_relabel_configs]
        scrape_configs.append(scrape)
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": scrape_configs,
    }


def targets_path(sd_dir: Path, job: str) -> Path:
    return sd_dir / f"{job}.json"


def targets_dir(state_dir: Path) -> Path:
    """Where the Prometheus of the mesh in ``state_dir`` reads its ``file_sd`` files."""
    return state_dir / "prometheus" / "targets"


def write_targets(path: Path, groups: Sequence[TargetGroup]) -> None:
    """Replace a ``file_sd`` file atomically: Prometheus must never read half a file."""
    content = [{"targets": list(g.targets), "labels": dict(g.labels)} for g in groups]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(content, indent=1, sort_keys=True))
    os.replace(tmp, path)


class LocalPrometheus:
    """Prometheus's files in ``<state_dir>/prometheus``: config, targets, TSDB, log."""

    def __init__(
        self,
        state_dir: Path,
        jobs: Sequence[ScrapeJob],
        port: int,
        *,
        scrape_interval: str = "1s",
        binary: Path = PROMETHEUS_BINARY,
        detached: bool = False,
    ) -> None:
        self.home = targets_dir(state_dir).parent
        self._state_dir = state_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._jobs = {job.name: job for job in jobs}
        self._scrape_interval = scrape_interval
        self._binary = binary
        self._detached = detached

    def spec(self, name: str = "prometheus") -> ProcessSpec:
        """Write the config and initial targets, and describe the process for the supervisor."""
        if not self._binary.exists():
            raise ConfigError(f"{self._binary} not found: run scripts/setup (Debian prometheus)")
        sd_dir = targets_dir(self._state_dir)
        sd_dir.mkdir(parents=True, exist_ok=True)
        for job in self._jobs.values():
            write_targets(targets_path(sd_dir, job.name), job.targets)
        config = self.home / "prometheus.yml"
        rendered = render_config(list(self._jobs.values()), sd_dir, self._scrape_interval)
        config.write_text(yaml.safe_dump(rendered, sort_keys=False))
        argv = [
            str(self._binary),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ]
        return ProcessSpec(
            name=name,
            argv=argv,
            log_path=self.home / "prometheus.log",
            probe=HttpProbe(f"{self.url}/-/ready"),
            detached=self._detached,
            stop_grace=5.0,
        )

    def set_targets(self, job: str, groups: Sequence[TargetGroup]) -> None:
        """Change what ``job`` scrapes; Prometheus notices the file change by itself."""
        if job not in self._jobs:
            raise ConfigError(f"no scrape job {job!r}; jobs are {sorted(self._jobs)}")
        write_targets(targets_path(self.home / "targets", job), groups)
