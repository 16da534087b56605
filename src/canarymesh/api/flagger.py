"""Flagger's ``Canary`` (``flagger.app/v1beta1``) accepted as input: translated to our kind,
with a warning for each field that does not map. Pure; called by the rollout commands of the
CLI when a file holds a Flagger Canary, and by tests.

How the strategy is inferred follows Flagger's own ``DeploymentStrategy()``: ``iterations`` with
``mirror`` is blue/green with mirroring (our ``mirror``), ``iterations`` alone or with ``match``
is blue/green or A/B (our ``blueGreen``, the match reaching the canary), otherwise a canary
ramp (``stepWeight``/``maxWeight`` or ``stepWeights``). The judge is Flagger's threshold judge,
with ``failureLimit`` = ``threshold``, so a translated Canary behaves as it did under Flagger.

What cannot map: Flagger creates ``<name>-primary``/``<name>-canary`` Deployments and its own
VirtualService; we shift between two subsets of an existing one. The subsets come from the
annotations ``canarymesh.io/stable-subset`` and ``canarymesh.io/canary-subset`` (default
``primary`` and ``canary``, with a warning).

Alerts: ``analysis.alerts`` become the Canary's ``notifications`` (a ``providerRef`` each;
severity ``info`` is every event, ``warn`` paused and rolled back, ``error`` rolled back), and
Flagger's ``AlertProvider`` becomes ours (:func:`translate_flagger_provider`) for the kinds we
deliver to (slack, msteams, discord); its URL must be in its Secret's ``address``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from canarymesh.api.canary import BUILTIN_METRICS, WEBHOOK_TYPES, Canary
from canarymesh.errors import ConfigError

__all__ = [
    "FLAGGER_API_VERSION",
    "Translation",
    "translate_flagger",
    "translate_flagger_provider",
]

FLAGGER_API_VERSION = "flagger.app/v1beta1"
STABLE_ANNOTATION = "canarymesh.io/stable-subset"
CANARY_ANNOTATION = "canarymesh.io/canary-subset"
# Fields of Flagger's service block that configure the VirtualService Flagger would generate.
_SERVICE_FIELDS_KEPT = frozenset({"name", "port", "targetPort", "portName"})
_ANALYSIS_FIELDS = frozenset({
    "interval", "threshold", "maxWeight", "stepWeight", "stepWeights", "iterations", "mirror",
    "mirrorWeight", "match", "sessionAffinity", "metrics", "webhooks", "alerts",
})  # fmt: skip
# Flagger's alert severity -> the events it reports (info: all of them).
_SEVERITY_EVENTS: dict[str, list[str]] = {
    "info": [],
    "warn": ["paused", "rolledBack"],
    "error": ["rolledBack"],
}
_PROVIDER_TYPES = frozenset({"slack", "msteams", "discord"})

Json = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Translation:
    """Our Canary, where it lives, and what was left behind (one sentence per field)."""

    name: str
    namespace: str | None
    canary: Canary
    warnings: tuple[str, ...]

    def to_manifest(self) -> dict[str, object]:
        metadata: dict[str, object] = {"name": self.name}
        if self.namespace is not None:
            metadata["namespace"] = self.namespace
        spec = self.canary.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        return {
            "apiVersion": "canarymesh.io/v1alpha1",
            "kind": "Canary",
            "metadata": metadata,
            "spec": spec,
        }


def translate_flagger(document: Json) -> Translation:
    """Our Canary for a Flagger Canary document; ConfigError when it is not one."""
    if document.get("apiVersion") != FLAGGER_API_VERSION or document.get("kind") != "Canary":
        raise ConfigError(f"not a Flagger Canary ({FLAGGER_API_VERSION}, kind Canary)")
    metadata, spec = _map(document, "metadata"), _map(document, "spec")
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError("Flagger Canary: metadata.name is required")
    namespace = metadata.get("namespace")
    warnings: list[str] = []
    ours: dict[str, object] = {
        "target": _target(name, metadata, spec, warnings),
        "strategy": _strategy(_map(spec, "analysis"), warnings),
        "analysis": _analysis(_map(spec, "analysis"), warnings),
        "webhooks": _webhooks(_map(spec, "analysis"), warnings),
    }
    alerts = _alerts(_map(spec, "analysis"), warnings)
    if alerts:
        ours["notifications"] = alerts
    if isinstance(spec.get("progressDeadlineSeconds"), int):
        ours["progressDeadline"] = f"{spec['progressDeadlineSeconds']}s"
    if spec.get("skipAnalysis") is True:
        ours["skipAnalysis"] = True
    for field in sorted(set(spec) - {"targetRef", "service", "analysis", "progressDeadlineSeconds",
                                     "skipAnalysis"}):  # fmt: skip
        warnings.append(f"spec.{field} is not mapped: the local mesh has no equivalent")
    try:
        canary = Canary.model_validate(ours)
    except ValidationError as exc:
        raise ConfigError(f"Flagger Canary {name}: cannot translate: {exc}") from exc
    return Translation(name, namespace if isinstance(namespace, str) else None, canary,
                       tuple(warnings))  # fmt: skip


def _target(name: str, metadata: Json, spec: Json, warnings: list[str]) -> dict[str, object]:
    ref, service = _map(spec, "targetRef"), _map(spec, "service")
    if ref.get("kind", "Deployment") != "Deployment" or not isinstance(ref.get("name"), str):
        raise ConfigError("Flagger Canary: spec.targetRef must name a Deployment")
    host = service.get("name") if isinstance(service.get("name"), str) else ref["name"]
    annotations = _map(metadata, "annotations")
    stable = annotations.get(STABLE_ANNOTATION)
    canary = annotations.get(CANARY_ANNOTATION)
    if not isinstance(stable, str) or not isinstance(canary, str):
        stable = stable if isinstance(stable, str) else "primary"
        canary = canary if isinstance(canary, str) else "canary"
        warnings.append(
            f"Flagger creates {ref['name']}-primary; we shift between subsets {stable} -> "
            f"{canary} of the VirtualService {host} (set the annotations {STABLE_ANNOTATION} "
            f"and {CANARY_ANNOTATION} to choose them)"
        )
    target: dict[str, object] = {
        "host": host,
        "virtualService": host,
        "stableSubset": stable,
        "canarySubset": canary,
    }
    if isinstance(service.get("port"), int):
        target["port"] = service["port"]
    for field in sorted(set(service) - _SERVICE_FIELDS_KEPT):
        warnings.append(f"spec.service.{field} is not mapped: the VirtualService is yours")
    if name != host:
        warnings.append(f"the Canary {name} manages host {host}")
    return target


def _strategy(analysis: Json, warnings: list[str]) -> dict[str, object]:
    match = analysis.get("match") if isinstance(analysis.get("match"), list) else []
    iterations = analysis.get("iterations")
    interval = analysis.get("interval", "1m")
    if isinstance(iterations, int) and iterations > 0:
        duration = _times(interval, iterations)
        if analysis.get("mirror") is True:
            weight = analysis.get("mirrorWeight", 100)
            return {"mirror": {"percentage": weight, "analysisDuration": duration}}
        return {"blueGreen": {"analysisDuration": duration, "match": match}}
    strategy: dict[str, object] = {"canary": _ramp(analysis, match, warnings)}
    affinity = _map(analysis, "sessionAffinity")
    if affinity:
        max_age = affinity.get("maxAge")
        strategy["sessionAffinity"] = {
            "cookieName": affinity.get("cookieName"),
            **({"maxAge": f"{max_age}s"} if isinstance(max_age, int) else {}),
        }
    return strategy


def _ramp(analysis: Json, match: object, warnings: list[str]) -> dict[str, object]:
    ramp: dict[str, object] = {"match": match}
    weights = analysis.get("stepWeights")
    if isinstance(weights, list) and weights:
        check: dict[str, object] = {"analysis": {}}
        ramp["steps"] = [step for w in weights for step in ({"setWeight": w}, check)]
    elif "stepWeight" in analysis:
        ramp["stepWeight"] = analysis["stepWeight"]
        ramp["maxWeight"] = analysis.get("maxWeight", 50)
    if analysis.get("mirror") is True:
        warnings.append("spec.analysis.mirror without iterations is not mapped: a canary ramp "
                        "does not mirror")  # fmt: skip
    for field in sorted(set(analysis) - _ANALYSIS_FIELDS):
        warnings.append(f"spec.analysis.{field} is not mapped")
    return ramp


def _analysis(analysis: Json, warnings: list[str]) -> dict[str, object]:
    metrics = []
    raw = analysis.get("metrics")
    for index, metric in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(metric, Mapping):
            continue
        name = metric.get("name")
        if "templateRef" in metric or name not in BUILTIN_METRICS:
            warnings.append(f"spec.analysis.metrics[{index}] ({name}) is not mapped: "
                            "MetricTemplates are not supported, add a query instead")  # fmt: skip
            continue
        if "interval" in metric:
            warnings.append(f"spec.analysis.metrics[{index}].interval is not mapped: every "
                            "metric uses spec.analysis.interval")  # fmt: skip
        metrics.append({"name": name, "thresholdRange": metric.get("thresholdRange", {})})
    result: dict[str, object] = {
        "judge": "threshold",
        "interval": analysis.get("interval", "1m"),
        "failureLimit": analysis.get("threshold", 1),
    }
    if metrics:
        result["metrics"] = metrics
    return result


def _webhooks(analysis: Json, warnings: list[str]) -> list[dict[str, object]]:
    hooks = []
    raw = analysis.get("webhooks")
    for index, hook in enumerate(raw if isinstance(raw, list) else []):
        if not isinstance(hook, Mapping):
            continue
        kind = hook.get("type", "rollout")
        if kind not in WEBHOOK_TYPES:
            warnings.append(f"spec.analysis.webhooks[{index}] ({hook.get('name')}) of type "
                            f"{kind} is not mapped")  # fmt: skip
            continue
        entry = {"name": hook.get("name"), "type": kind, "url": hook.get("url")}
        if "timeout" in hook:
            entry["timeout"] = hook["timeout"]
        metadata = hook.get("metadata")
        if isinstance(metadata, Mapping):
            entry["metadata"] = {str(k): str(v) for k, v in metadata.items()}
            if "cmd" in metadata and "hey" in str(metadata["cmd"]):
                warnings.append(f"spec.analysis.webhooks[{index}] runs a load test through "
                                "Flagger's tester; spec.loadGenerator is built in")  # fmt: skip
        hooks.append(entry)
    return hooks


def _alerts(analysis: Json, warnings: list[str]) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    raw = analysis.get("alerts")
    for index, alert in enumerate(raw if isinstance(raw, list) else []):
        ref = alert.get("providerRef") if isinstance(alert, Mapping) else None
        if not isinstance(ref, Mapping) or not isinstance(ref.get("name"), str):
            warnings.append(f"spec.analysis.alerts[{index}] has no providerRef.name: not mapped")
            continue
        assert isinstance(alert, Mapping)
        severity = str(alert.get("severity", "info"))
        if severity not in _SEVERITY_EVENTS:
            warnings.append(f"spec.analysis.alerts[{index}].severity {severity} is not one of "
                            "info, warn, error: every event is sent")  # fmt: skip
        provider: dict[str, object] = {"name": ref["name"]}
        if isinstance(ref.get("namespace"), str):
            provider["namespace"] = ref["namespace"]
        found.append({"providerRef": provider, "events": _SEVERITY_EVENTS.get(severity, [])})
    return found


def translate_flagger_provider(document: Json) -> tuple[dict[str, object], list[str]]:
    """Our AlertProvider manifest for Flagger's, and what did not map; ConfigError, naming the
    field, for what cannot."""
    metadata, spec = _map(document, "metadata"), _map(document, "spec")
    name = metadata.get("name")
    where = f"Flagger AlertProvider {name}"
    kind = spec.get("type")
    if kind not in _PROVIDER_TYPES:
        raise ConfigError(
            f"{where}: spec.type: {kind} is not supported (slack, msteams, discord; or write "
            "our AlertProvider of type webhook or alertmanager)"
        )
    if "address" in spec:
        raise ConfigError(f"{where}: spec.address: a webhook URL is a credential: put it in a "
                          "Secret (key address) and name it in spec.secretRef")  # fmt: skip
    secret = _map(spec, "secretRef")
    if not isinstance(secret.get("name"), str):
        raise ConfigError(f"{where}: spec.secretRef.name is required (a Secret with the URL in "
                          "its key address)")  # fmt: skip
    ours: dict[str, object] = {"type": kind, "secretRef": {"name": secret["name"]}}
    warnings = []
    if isinstance(spec.get("channel"), str) and kind == "slack":
        ours["channel"] = spec["channel"]
    if isinstance(spec.get("username"), str) and kind in ("slack", "discord"):
        ours["username"] = spec["username"]
    for field in sorted(set(spec) - {"type", "secretRef", "channel", "username"}):
        warnings.append(f"{where}: spec.{field} is not mapped")
    out_meta = {k: v for k, v in metadata.items() if k in ("name", "namespace", "labels")}
    manifest: dict[str, object] = {"apiVersion": "canarymesh.io/v1alpha1", "kind": "AlertProvider",
                "metadata": out_meta, "spec": ours}  # fmt: skip
    return manifest, warnings


def _times(interval: object, count: int) -> str:
    if not isinstance(interval, str) or not interval[:-1].isdigit() or interval[-1] not in "sm":
        return f"{count}m"
    return f"{int(interval[:-1]) * count}{interval[-1]}"


def _map(data: Json, key: str) -> Json:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}
