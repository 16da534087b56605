"""The local mesh's Prometheus: Debian's binary as a supervised child, and a small query client.

``canarymesh up`` builds a :class:`LocalPrometheus` in the state directory and hands
:meth:`LocalPrometheus.spec` to the supervisor; whenever pods come and go it calls
:meth:`LocalPrometheus.set_targets`, which rewrites a ``file_sd`` file that Prometheus watches, so
no restart or reload is needed. The canary analysis reads metrics through
:class:`PrometheusClient` (``/api/v1/query``), which is also what the Kubernetes runtime uses
against a cluster's Prometheus.

A new Prometheus scrapes for the first time about 5 s after it starts, and a ``rate()`` over a
``[5s]`` window is only accurate some 11 s after start (measured in envoy-notes, section 5).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

import aiohttp
import yaml

from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.runtime.local.supervisor import HttpProbe, ProcessSpec

__all__ = [
    "LocalPrometheus",
    "PrometheusClient",
    "PrometheusQueryError",
    "PrometheusUnavailable",
    "QueryResult",
    "Sample",
    "ScrapeJob",
    "TargetGroup",
    "render_config",
]

PROMETHEUS_BINARY = Path("/usr/bin/prometheus")


class PrometheusUnavailable(TemporaryError):
    """Prometheus did not answer (not started yet, restarting, overloaded): try again later."""


class PrometheusQueryError(ConfigError):
    """Prometheus refused the query itself (bad PromQL, wrong type): fix the query."""


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


@dataclass(frozen=True, slots=True)
class Sample:
    labels: Mapping[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True, slots=True)
class QueryResult:
    """An instant query's answer; a scalar comes back as one sample without labels."""

    result_type: Literal["vector", "scalar"]
    samples: tuple[Sample, ...]

    def value(self, default: float = math.nan) -> float:
        """The single value of a one-series result (``default`` when empty)."""
        if len(self.samples) > 1:
            raise PrometheusQueryError(f"expected one series, got {len(self.samples)}")
        return self.samples[0].value if self.samples else default


class PrometheusClient:
    """``GET /api/v1/query`` against any Prometheus; ``async with`` closes the session."""

    def __init__(
        self, base_url: str, timeout: float = 5.0, headers: Mapping[str, str] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # e.g. Authorization for a cluster's Prometheus behind a proxy (canarymesh.runtime.kube)
        self._headers = dict(headers or {})
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def is_online(self) -> bool:
        try:
            status, _ = await self._get("/-/ready", {})
        except PrometheusUnavailable:
            return False
        return status == 200

    async def query(self, promql: str, at: float | None = None) -> QueryResult:
        params = {"query": promql} | ({"time": repr(at)} if at is not None else {})
        status, text = await self._get("/api/v1/query", params)
        try:
            body = cast(dict[str, object], json.loads(text))
        except ValueError:
            raise PrometheusUnavailable(f"{self.base_url}: not JSON ({status})", delay=5) from None
        if body.get("status") != "success":
            reason = f"{body.get('errorType')}: {body.get('error')}"
            if status in (400, 422):
                raise PrometheusQueryError(f"query {promql!r} refused: {reason}")
            raise PrometheusUnavailable(f"query {promql!r} failed ({status}) {reason}", delay=5)
        return _parse_data(promql, cast(dict[str, object], body["data"]))

    async def _get(self, path: str, params: Mapping[str, str]) -> tuple[int, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, trust_env=False, headers=self._headers
            )
        try:
            async with self._session.get(self.base_url + path, params=params) as response:
                return response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as err:
            message = f"Prometheus at {self.base_url} unreachable: {err!r}"
            raise PrometheusUnavailable(message, delay=5) from err


def _parse_data(promql: str, data: Mapping[str, object]) -> QueryResult:
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list):
        return QueryResult("scalar", (Sample({}, float(result[1]), float(result[0])),))
    if kind == "vector" and isinstance(result, list):
        samples = []
        for series in cast(list[dict[str, object]], result):
            timestamp, value = cast(list[object], series["value"])
            labels = cast(dict[str, str], series.get("metric", {}))
            samples.append(Sample(labels, float(cast(str, value)), float(cast(float, timestamp))))
        return QueryResult("vector", tuple(samples))
    raise PrometheusQueryError(
        f"query {promql!r} returned a {kind}; only instant vectors and scalars are supported"
    )
