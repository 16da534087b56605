"""Argo Rollouts' ``AnalysisTemplate`` and ``ClusterAnalysisTemplate`` (``argoproj.io/v1alpha1``)
as our Canary's threshold metrics. Pure; called by :mod:`canarymesh.api.argo` for the templates
a Rollout references, and by ``canarymesh apply`` for templates applied on their own.

What maps: Prometheus metrics (``provider.prometheus.query``, with ``{{args.NAME}}`` resolved
as Argo does: the Rollout's args over the template's defaults, ``valueFrom.fieldRef`` of the
Rollout's metadata, ``valueFrom.podTemplateHashValue`` Stable or Latest), ``interval``,
``count`` (an analysis step lasts ``count`` intervals), ``failureLimit`` (Argo fails after more
than ``failureLimit`` failed measurements; our ``failureLimit`` counts the failure that rolls
back, so it is Argo's plus one), and ``successCondition``/``failureCondition`` written as
comparisons of ``result[0]`` (or ``result``) with numbers, joined by ``&&``: they become the
metric's ``thresholdRange`` (inclusive bounds: ``> 0.9`` is judged as ``>= 0.9``, said in a
warning). Our Canary queries Prometheus itself, so ``address``, ``timeout``, ``headers`` and
``insecure`` are the mesh's and are only noted.

What is refused, by field: any provider but Prometheus (job, web, datadog, newRelic, wavefront,
kayenta, cloudWatch, graphite, influxdb, skywalking, plugin), range queries, ``dryRun``,
args from Secrets, conditions outside that grammar (``all(...)``, ``len(result)``,
``isNaN``, ``||``), a negative ``failureLimit``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from canarymesh.api.durations import parse_duration

__all__ = [
    "ARGO_GROUP",
    "ANALYSIS_KINDS",
    "ArgoMetric",
    "ArgoRefusal",
    "Refusals",
    "resolve_args",
    "template_metrics",
    "threshold_of",
]

ARGO_GROUP = "argoproj.io"
ANALYSIS_KINDS = frozenset({"AnalysisTemplate", "ClusterAnalysisTemplate"})
Json = Mapping[str, object]

_PROVIDERS = (
    "job",
    "web",
    "datadog",
    "newRelic",
    "wavefront",
    "kayenta",
    "cloudWatch",
    "graphite",
    "influxdb",
    "skywalking",
    "plugin",
)
_NOTED_PROMETHEUS = ("address", "timeout", "insecure", "headers", "authentication")
_NOTED_METRIC = (
    "initialDelay",
    "consecutiveErrorLimit",
    "inconclusiveLimit",
    "consecutiveSuccessLimit",
)
_METRIC_FIELDS = frozenset(
    {
        "name",
        "interval",
        "count",
        "failureLimit",
        "successCondition",
        "failureCondition",
        "provider",
        *_NOTED_METRIC,
    }
)
_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VALUE = r"(?:asFloat\(\s*)?result(?:\s*\[\s*0\s*\])?(?:\s*\))?"
_COMPARISON = re.compile(
    rf"^\s*(?:(?P<value>{_VALUE})\s*(?P<op>>=|<=|==|>|<)\s*(?P<number>{_NUMBER})"
    rf"|(?P<number2>{_NUMBER})\s*(?P<op2>>=|<=|==|>|<)\s*(?P<value2>{_VALUE}))\s*$"
)
_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">", "==": "=="}


@dataclass(frozen=True, slots=True)
class ArgoRefusal:
    """One thing we do not support, where it is written: ``kind name path: problem``."""

    where: str
    path: str
    problem: str

    def line(self) -> str:
        return f"{self.where} {self.path}: {self.problem}"


@dataclass
class Refusals:
    """Refusals and warnings gathered over a whole input, so one run shows every problem."""

    refused: list[ArgoRefusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def refuse(self, where: str, path: str, problem: str) -> None:
        self.refused.append(ArgoRefusal(where, path, problem))

    def warn(self, where: str, path: str, problem: str) -> None:
        self.warnings.append(f"{where} {path}: {problem}")


@dataclass(frozen=True, slots=True)
class ArgoMetric:
    """One Prometheus metric of a template, ready for our Canary."""

    name: str
    query: str
    minimum: float | None
    maximum: float | None
    interval: datetime.timedelta | None
    count: int | None
    failure_limit: int

    def check(self) -> dict[str, object]:
        """Our MetricCheck, as a manifest writes it."""
        limits: dict[str, object] = {}
        if self.minimum is not None:
            limits["min"] = self.minimum
        if self.maximum is not None:
            limits["max"] = self.maximum
        return {"name": self.name, "query": self.query, "thresholdRange": limits}


def threshold_of(
    success: str | None, failure: str | None, where: str, path: str, out: Refusals
) -> tuple[float | None, float | None] | None:
    """(min, max) for ``successCondition`` and ``failureCondition``; None once refused."""
    low: float | None = None
    high: float | None = None
    strict = False
    if success is None and failure is None:
        out.refuse(where, path, "needs successCondition or failureCondition")
        return None
    for field_name, text, passing in (
        ("successCondition", success, True),
        ("failureCondition", failure, False),
    ):
        if text is None:
            continue
        parts = [p for p in re.split(r"&&|\band\b", text)]
        parsed = [_comparison(p) for p in parts]
        if any(p is None for p in parsed) or "||" in text or (not passing and len(parsed) > 1):
            grammar = "a comparison of result[0] (or result) with a number"
            if passing:
                grammar += ", several joined by &&"
            out.refuse(
                where, f"{path}.{field_name}", f"`{text.strip()}` is not supported: write {grammar}"
            )
            return None
        for comparison in parsed:
            assert comparison is not None
            op, number = comparison
            if not passing:  # failing when it holds: passing when its negation does
                op = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}[op]
            if op == "!=":
                out.refuse(
                    where,
                    f"{path}.{field_name}",
                    f"`{text.strip()}` is not supported: an equality cannot be a failure condition",
                )
                return None
            strict = strict or op in (">", "<")
            if op in (">=", ">", "=="):
                low = number if low is None else max(low, number)
            if op in ("<=", "<", "=="):
                high = number if high is None else min(high, number)
    if strict:
        out.warn(
            where,
            path,
            f"strict bounds are judged inclusive (thresholdRange min/max): min {low}, max {high}",
        )
    if low is not None and high is not None and low > high:
        out.refuse(where, path, f"the conditions can never hold together (min {low} > max {high})")
        return None
    return low, high


def _comparison(text: str) -> tuple[str, float] | None:
    match = _COMPARISON.match(text)
    if match is None:
        return None
    if match.group("op") is not None:
        return match.group("op"), float(match.group("number"))
    return _FLIP[match.group("op2")], float(match.group("number2"))


def resolve_args(
    template_args: Sequence[object],
    given: Mapping[str, str],
    where: str,
    out: Refusals,
) -> dict[str, str] | None:
    """Each argument's value: ``given`` (the Rollout's, already resolved) over the template's
    own ``value``; None once refused (a missing value, a Secret)."""
    values: dict[str, str] = {}
    ok = True
    for index, raw in enumerate(template_args):
        arg = raw if isinstance(raw, Mapping) else {}
        name = arg.get("name")
        path = f"spec.args[{index}]"
        if not isinstance(name, str):
            out.refuse(where, f"{path}.name", "an argument needs a name")
            ok = False
            continue
        if name in given:
            values[name] = given[name]
        elif isinstance(arg.get("value"), str):
            values[name] = str(arg["value"])
        elif "valueFrom" in arg:
            out.refuse(
                where,
                f"{path}.valueFrom",
                "arguments from Secrets or fields of the "
                "template are not supported: pass the value from the Rollout",
            )
            ok = False
        else:
            out.refuse(where, path, f"argument {name!r} was not supplied by the Rollout")
            ok = False
    return values if ok else None


def _render(
    query: str, args: Mapping[str, str], where: str, path: str, out: Refusals
) -> str | None:
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        tag = match.group(1).strip()
        if tag.startswith("args.") and tag[5:] in args:
            return args[tag[5:]]
        missing.append(tag)
        return ""

    rendered = _TAG.sub(replace, query)
    if missing:
        out.refuse(where, path, f"cannot resolve {', '.join('{{' + m + '}}' for m in missing)}")
        return None
    return " ".join(rendered.split())


def template_metrics(
    kind: str,
    document: Json,
    given: Mapping[str, str],
    out: Refusals,
) -> list[ArgoMetric]:
    """The Prometheus metrics of one template, its args resolved with ``given``; every
    refusal and warning goes to ``out``."""
    metadata = _map(document, "metadata")
    spec = _map(document, "spec")
    where = f"{kind} {metadata.get('name')}"
    if spec.get("dryRun"):
        out.refuse(
            where,
            "spec.dryRun",
            "dry-run metrics are not supported: their failures would roll back here",
        )
    for noted in ("measurementRetention",):
        if noted in spec:
            out.warn(where, f"spec.{noted}", "not mapped: the rollout keeps its latest verdicts")
    raw_args = spec.get("args")
    args = resolve_args(raw_args if isinstance(raw_args, list) else [], given, where, out)
    metrics: list[ArgoMetric] = []
    raw = spec.get("metrics")
    if not isinstance(raw, list) or not raw:
        out.refuse(where, "spec.metrics", "a template needs at least one metric")
        return metrics
    for index, entry in enumerate(raw):
        metric = _metric(entry, index, args, where, out)
        if metric is not None:
            metrics.append(metric)
    return metrics


def _metric(
    entry: object, index: int, args: Mapping[str, str] | None, where: str, out: Refusals
) -> ArgoMetric | None:
    path = f"spec.metrics[{index}]"
    metric = entry if isinstance(entry, Mapping) else {}
    name = metric.get("name")
    if not isinstance(name, str) or not name:
        out.refuse(where, f"{path}.name", "a metric needs a name")
        return None
    provider = _map(metric, "provider")
    others = [p for p in provider if p != "prometheus"]
    if others or "prometheus" not in provider:
        kind = others[0] if others else "(none)"
        out.refuse(
            where,
            f"{path}.provider.{kind}" if others else f"{path}.provider",
            f"the {kind} provider is not supported: only prometheus runs on the local mesh",
        )
        return None
    prometheus = _map(provider, "prometheus")
    if "rangeQuery" in prometheus:
        out.refuse(
            where,
            f"{path}.provider.prometheus.rangeQuery",
            "range queries are not supported: write an instant query",
        )
        return None
    for noted in _NOTED_PROMETHEUS:
        if noted in prometheus:
            out.warn(
                where,
                f"{path}.provider.prometheus.{noted}",
                "not mapped: the canary controller queries its own Prometheus",
            )
    for noted in _NOTED_METRIC:
        if noted in metric:
            out.warn(where, f"{path}.{noted}", "not mapped")
    for unknown in sorted(set(metric) - _METRIC_FIELDS):
        out.warn(where, f"{path}.{unknown}", "not mapped")
    interval = _duration(metric.get("interval"), where, f"{path}.interval", out)
    count = metric.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        out.refuse(where, f"{path}.count", f"{count!r}: must be a positive integer")
        return None
    limit = metric.get("failureLimit", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        out.refuse(where, f"{path}.failureLimit", f"{limit!r}: must be 0 or more")
        return None
    success, failure = metric.get("successCondition"), metric.get("failureCondition")
    bounds = threshold_of(
        success if isinstance(success, str) else None,
        failure if isinstance(failure, str) else None,
        where,
        path,
        out,
    )
    query = prometheus.get("query")
    if not isinstance(query, str) or not query.strip():
        out.refuse(where, f"{path}.provider.prometheus.query", "a Prometheus metric needs a query")
        return None
    if args is None or bounds is None:
        return None
    rendered = _render(query, args, where, f"{path}.provider.prometheus.query", out)
    if rendered is None:
        return None
    return ArgoMetric(name, rendered, bounds[0], bounds[1], interval, count, limit)


def _duration(value: object, where: str, path: str, out: Refusals) -> datetime.timedelta | None:
    if value is None:
        return None
    parsed = parse_duration(value) if isinstance(value, str) else None
    if parsed is None or parsed <= datetime.timedelta(0):
        out.refuse(where, path, f"{value!r}: must be a duration such as 30s or 5m")
        return None
    return parsed


def _map(data: Json, key: str) -> Json:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}
