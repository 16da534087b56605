"""Argo Rollouts' ``Rollout`` (``argoproj.io/v1alpha1``) accepted as input: its pod template run
as two revisions, its canary steps and analysis as our Canary, what does not map warned about,
and what we cannot run refused by field. Pure; called by ``canarymesh apply`` and ``rollout
start`` (:mod:`canarymesh.cli.inputs`, which reads what the mesh holds now), and by tests.

**What is built** (``docs/argo-rollouts.md`` has the picture). Argo replaces a Deployment with
ReplicaSets named ``<rollout>-<pod-template-hash>`` whose pods carry the label
``rollouts-pod-template-hash``, and, for Istio subset-level routing, writes those hashes into
the DestinationRule's stable and canary subsets. We do the same with what the local mesh runs:

* each revision is a Deployment ``<rollout>-<hash>`` (labels ``rollouts-pod-template-hash`` and
  ``canarymesh.io/rollout``, annotation ``rollout.argoproj.io/revision``), its pods labelled
  with the hash, the Rollout's ``replicas`` each;
* the DestinationRule's subsets get ``rollouts-pod-template-hash``: both the stable's hash while
  nothing is rolling out, stable and canary hashes during a rollout;
* a changed template is a new canary revision and a Canary of the Rollout's name whose target
  is the VirtualService's routes between the two subsets (``target.revisions``), its rollout id
  the canary's hash (re-applying the same template does not restart it);
* the first revision, or the stable template applied again, is stable at once (no steps, as in
  Argo); revisions that are neither stable nor canary are scaled to zero and the oldest beyond
  ``revisionHistoryLimit`` (default 10) removed.

Our hash is not Argo's (Argo hashes Go's printing of the template): it is the SHA-256 of the
template's canonical JSON in Kubernetes' safe alphabet, so the same template always gets it.

**Refused, by field**: ``blueGreen``; ``workloadRef``; ``paused``; traffic routing other than
Istio's subset split (another provider, host-level ``canaryService``/``stableService``,
several VirtualServices, ``tlsRoutes``/``tcpRoutes``, ``managedRoutes``); the steps
``experiment``, ``setHeaderRoute``, ``setMirrorRoute``, ``plugin``; analysis that
:mod:`canarymesh.api.argo_analysis` refuses; a selector with ``matchExpressions``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from canarymesh.api.argo_analysis import (
    ARGO_GROUP,
    ArgoMetric,
    ArgoRefusal,
    Refusals,
    template_metrics,
)
from canarymesh.api.canary import API_VERSION, REVISION_LABEL, ROLLOUT_ID_ANNOTATION, Canary
from canarymesh.errors import ConfigError

__all__ = [
    "ARGO_API_VERSION",
    "MANAGED_BY_ANNOTATION",
    "REVISION_ANNOTATION",
    "ROLLOUT_LABEL",
    "MeshState",
    "RolloutTranslation",
    "TemplateKey",
    "analysis_template_problems",
    "analysis_template_refusals",
    "deployment_name",
    "pod_template_hash",
    "rollout_problems",
    "translate_rollout",
]

ARGO_API_VERSION = f"{ARGO_GROUP}/v1alpha1"
ROLLOUT_LABEL = "canarymesh.io/rollout"
REVISION_ANNOTATION = "rollout.argoproj.io/revision"
MANAGED_BY_ANNOTATION = "argo-rollouts.argoproj.io/managed-by-rollouts"
NOTIFY_PREFIX = "notifications.argoproj.io/subscribe."
DEFAULT_HISTORY = 10
# (kind, namespace, name); a ClusterAnalysisTemplate's namespace is "".
TemplateKey = tuple[str, str, str]
Json = Mapping[str, object]

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_PROVIDERS = ("nginx", "alb", "smi", "ambassador", "appMesh", "traefik", "apisix", "plugins")
_REFUSED_STEPS = {
    "experiment": "experiments are not supported",
    "setHeaderRoute": "header routes are not supported; a Canary's strategy.canary.match sends "
    "matching requests to the canary from the first step",
    "setMirrorRoute": "mirror routes are not supported; a Canary's strategy.mirror copies "
    "traffic to the canary",
    "plugin": "step plugins are not supported",
}
_NOTED_CANARY = {
    "maxSurge": "pods are not surged: both revisions run the Rollout's replicas",
    "maxUnavailable": "pods are not surged: both revisions run the Rollout's replicas",
    "scaleDownDelaySeconds": "the old revision is scaled down once every proxy routes to the "
    "new one",
    "scaleDownDelayRevisionLimit": "the old revision is scaled down once every proxy routes to "
    "the new one",
    "abortScaleDownDelaySeconds": "an aborted canary keeps its pods until the next apply",
    "dynamicStableScale": "the stable keeps its replicas",
    "canaryMetadata": "pods are labelled at creation only",
    "stableMetadata": "pods are labelled at creation only",
    "antiAffinity": "the local mesh has one node",
    "minPodsPerReplicaSet": "both revisions run the Rollout's replicas",
    "pingPong": "",
}
_NOTED_SPEC = {
    "minReadySeconds": "",
    "restartAt": "pods are not restarted",
    "rollbackWindow": "",
    "analysis": "analysis runs are not kept",
}
_TRIGGERS = {
    "on-rollout-updated": "started",
    "on-rollout-step-completed": "step",
    "on-rollout-paused": "paused",
    "on-rollout-completed": "promoted",
    "on-rollout-aborted": "rolledBack",
    "on-analysis-run-failed": "rolledBack",
}


@dataclass(frozen=True, slots=True)
class MeshState:
    """What the mesh holds for one Rollout when it is applied (the shell reads it).

    ``destination_rule``: the DestinationRule to write (the input's, else the applied one).
    ``applied_rule``: the one applied now, whose stable subset's label says which revision is
    stable (None before the first apply; the input's copy is not trusted for that).
    ``revisions``: this Rollout's Deployments now, by hash. ``templates``: the analysis
    templates of the input and the mesh (``templates_complete``: all of them).
    """

    destination_rule: Json | None = None
    applied_rule: Json | None = None
    revisions: Mapping[str, Json] = field(default_factory=dict)
    templates: Mapping[TemplateKey, Json] = field(default_factory=dict)
    # False when ``templates`` may lack some (``validate`` reads one file, not the mesh): a
    # template it does not hold is then not refused.
    templates_complete: bool = True


@dataclass(frozen=True, slots=True)
class RolloutTranslation:
    """Documents to apply (revisions, the DestinationRule, the Canary when a canary runs) and
    Deployments to delete, with a line for the user and a warning per field left behind."""

    name: str
    namespace: str
    template_hash: str
    stable_hash: str
    canary_hash: str | None
    documents: tuple[dict[str, object], ...]
    prune: tuple[str, ...]
    canary: Canary | None
    summary: str
    warnings: tuple[str, ...]


def pod_template_hash(template: Json) -> str:
    """Ten characters of Kubernetes' safe alphabet, from the template's canonical JSON."""
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    number = int.from_bytes(hashlib.sha256(canonical).digest(), "big")
    chars = []
    for _ in range(10):
        number, rest = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[rest])
    return "".join(chars)


def deployment_name(rollout: str, template_hash: str) -> str:
    return f"{rollout}-{template_hash}"


def analysis_template_problems(kind: str, document: Json) -> tuple[list[str], list[str]]:
    """(refusals, warnings) of a template applied on its own: its providers and conditions
    (its args are checked when a Rollout supplies them)."""
    out = _template_checked(kind, document)
    return [r.line() for r in out.refused], out.warnings


def analysis_template_refusals(kind: str, document: Json) -> list[ArgoRefusal]:
    """The refusals of :func:`analysis_template_problems`, by field (``canarymesh validate``)."""
    return _template_checked(kind, document).refused


def _template_checked(kind: str, document: Json) -> Refusals:
    out = Refusals()
    raw_args = _map(document, "spec").get("args")
    placeholders = {
        str(a.get("name")): "0"
        for a in (raw_args if isinstance(raw_args, list) else [])
        if isinstance(a, Mapping)
    }
    template_metrics(kind, document, placeholders, out)
    return Refusals([r for r in out.refused if "args" not in r.path], out.warnings)


def translate_rollout(
    document: Json, state: MeshState, *, rollout_id: str | None = None
) -> RolloutTranslation:
    """What the mesh must hold for ``document``; ConfigError listing every refusal.

    ``rollout_id`` (``rollout start``'s stamp) starts a new rollout of the canary even when
    its revision is the one already rolling; by default the id is the canary's hash, so
    applying the same template again changes nothing."""
    checked = _checked(document, state)
    if checked.out.refused:
        raise ConfigError("\n".join(r.line() for r in checked.out.refused))
    name, namespace, spec, out = checked.name, checked.namespace, checked.spec, checked.out
    routing, template, selector = checked.routing, checked.template, checked.selector
    replicas, stable, stable_hash = checked.replicas, checked.stable, checked.stable_hash
    template_hash = checked.template_hash
    canary_hash, steps, metrics = checked.canary_hash, checked.steps, checked.metrics
    notifications = checked.notifications
    assert routing is not None
    revisions = _revisions(
        name, namespace, template, selector, replicas, state, stable_hash, canary_hash, spec
    )
    rule = _labelled_rule(routing, state, namespace, name, stable_hash, canary_hash)
    documents: list[dict[str, object]] = [*revisions, rule]
    canary = None
    if canary_hash is not None:
        host = str(_map(rule, "spec").get("host") or "")
        manifest = _canary_manifest(
            name,
            namespace,
            host,
            routing,
            stable_hash,
            canary_hash,
            steps,
            metrics,
            spec,
            notifications,
            rollout_id or canary_hash,
        )
        try:
            canary = Canary.model_validate(manifest["spec"])
        except ValidationError as exc:
            raise ConfigError(f"Rollout {namespace}/{name}: cannot translate: {exc}") from exc
        documents.append(manifest)
        summary = (
            f"revision {canary_hash} is the canary of {stable_hash}: "
            f"{len(steps)} step(s) through {routing.virtual_service}"
        )
    elif stable is None:
        summary = f"revision {stable_hash} is stable (the first revision: no steps, as in Argo)"
    else:
        summary = f"revision {stable_hash} is stable (unchanged)"
    limit = spec.get("revisionHistoryLimit", DEFAULT_HISTORY)
    prune = _prune(state, {stable_hash, canary_hash}, limit if isinstance(limit, int) else 10)
    warnings = tuple(dict.fromkeys(out.warnings))
    return RolloutTranslation(
        name,
        namespace,
        template_hash,
        stable_hash,
        canary_hash,
        tuple(documents),
        prune,
        canary,
        summary,
        warnings,
    )


def rollout_problems(document: Json) -> list[ArgoRefusal]:
    """Every refusal of a Rollout that needs neither the mesh nor the rest of the input, for
    ``canarymesh validate`` (its analysis templates are checked where they are written, and
    against the Rollout's args when it is applied)."""
    return list(_checked(document, MeshState(templates_complete=False)).out.refused)


@dataclass(frozen=True, slots=True)
class _Checked:
    """A Rollout read against the mesh's state: what the translation needs, and ``out``, its
    refusals and warnings (when there are refusals the rest is not to be used)."""

    name: str
    namespace: str
    spec: Json
    out: Refusals
    routing: _Routing | None
    template: Json
    selector: dict[str, str]
    replicas: int
    template_hash: str
    stable: str | None
    stable_hash: str
    canary_hash: str | None
    steps: list[dict[str, object]]
    metrics: list[ArgoMetric]
    notifications: list[dict[str, object]]


def _checked(document: Json, state: MeshState) -> _Checked:
    metadata, spec = _map(document, "metadata"), _map(document, "spec")
    name, namespace = metadata.get("name"), metadata.get("namespace") or "default"
    if document.get("apiVersion") != ARGO_API_VERSION or document.get("kind") != "Rollout":
        raise ConfigError(f"not an Argo Rollout ({ARGO_API_VERSION}, kind Rollout)")
    if not isinstance(name, str) or not name:
        raise ConfigError("Rollout: metadata.name is required")
    assert isinstance(namespace, str)
    where = f"Rollout {namespace}/{name}"
    out = Refusals()
    strategy = _canary_strategy(spec, where, out)
    routing = _routing(strategy, where, out)
    template, selector = _template(spec, where, out)
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        out.refuse(where, "spec.replicas", f"{replicas!r}: must be 0 or more")
        replicas = 1
    for key, why in _NOTED_SPEC.items():
        if key in spec:
            out.warn(where, f"spec.{key}", f"not mapped{': ' + why if why else ''}")
    template_hash = pod_template_hash(template) if template else ""
    stable = _stable_hash(state, routing)
    canary_hash = template_hash if stable is not None and stable != template_hash else None
    stable_hash = stable if stable is not None else template_hash
    steps, metrics = _steps(
        strategy, spec, document, state, stable_hash, canary_hash or stable_hash, where, out
    )
    notifications = _notifications(metadata, where, out)
    return _Checked(
        name, namespace, spec, out, routing, template, selector, replicas, template_hash, stable,
        stable_hash, canary_hash, steps, metrics, notifications,
    )  # fmt: skip


# --- strategy and traffic routing --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Routing:
    virtual_service: str
    routes: tuple[str, ...]
    destination_rule: str
    stable_subset: str
    canary_subset: str


def _canary_strategy(spec: Json, where: str, out: Refusals) -> Json:
    if "workloadRef" in spec:
        out.refuse(
            where,
            "spec.workloadRef",
            "a Rollout that references a Deployment is not "
            "supported: write the pod template in spec.template",
        )
    if spec.get("paused") is True:
        out.refuse(
            where,
            "spec.paused",
            "a paused Rollout is not supported: apply it unpaused "
            "and use `canarymesh rollout pause`",
        )
    strategy = _map(spec, "strategy")
    if "blueGreen" in strategy:
        out.refuse(
            where,
            "spec.strategy.blueGreen",
            "the blue-green strategy is not supported: "
            "use a canary strategy (or our Canary's strategy.blueGreen)",
        )
        return {}
    if not isinstance(strategy.get("canary"), Mapping):
        out.refuse(where, "spec.strategy.canary", "a canary strategy is required")
        return {}
    canary = _map(strategy, "canary")
    for key, why in _NOTED_CANARY.items():
        if key in canary and key != "pingPong":
            out.warn(where, f"spec.strategy.canary.{key}", f"not mapped: {why}")
    if "pingPong" in canary:
        out.refuse(where, "spec.strategy.canary.pingPong", "ping-pong services are not supported")
    return canary


def _routing(canary: Json, where: str, out: Refusals) -> _Routing | None:
    if not canary:
        return None
    base = "spec.strategy.canary"
    for key in ("canaryService", "stableService"):
        if key in canary:
            out.refuse(
                where,
                f"{base}.{key}",
                "host-level traffic splitting is not supported: "
                "route between the subsets of trafficRouting.istio.destinationRule",
            )
    routing = _map(canary, "trafficRouting")
    if not routing:
        out.refuse(
            where,
            f"{base}.trafficRouting",
            "traffic routing is required: the local "
            "mesh shifts requests with trafficRouting.istio, not by replica counts",
        )
        return None
    for provider in _PROVIDERS:
        if provider in routing:
            out.refuse(
                where,
                f"{base}.trafficRouting.{provider}",
                f"the {provider} traffic router is not supported: use istio",
            )
    if "managedRoutes" in routing:
        out.refuse(
            where,
            f"{base}.trafficRouting.managedRoutes",
            "managed routes (for header and mirror steps) are not supported",
        )
    istio = _map(routing, "istio")
    if not istio:
        out.refuse(where, f"{base}.trafficRouting.istio", "Istio traffic routing is required")
        return None
    path = f"{base}.trafficRouting.istio"
    services = istio.get("virtualServices")
    if isinstance(services, list):
        if len(services) != 1 or not isinstance(services[0], Mapping):
            out.refuse(where, f"{path}.virtualServices", "exactly one VirtualService is supported")
            return None
        service, vs_path = services[0], f"{path}.virtualServices[0]"
    else:
        service, vs_path = _map(istio, "virtualService"), f"{path}.virtualService"
    for key in ("tlsRoutes", "tcpRoutes"):
        if key in service:
            out.refuse(where, f"{vs_path}.{key}", "only HTTP routes are shifted")
    vs_name = service.get("name")
    if not isinstance(vs_name, str) or not vs_name:
        out.refuse(where, f"{vs_path}.name", "the VirtualService's name is required")
        return None
    routes = service.get("routes", [])
    if not isinstance(routes, list) or not all(isinstance(r, str) for r in routes):
        out.refuse(where, f"{vs_path}.routes", "must be a list of HTTP route names")
        return None
    rule = _map(istio, "destinationRule")
    names = [rule.get(k) for k in ("name", "stableSubsetName", "canarySubsetName")]
    if not rule or not all(isinstance(n, str) and n for n in names):
        out.refuse(
            where,
            f"{path}.destinationRule",
            "name, stableSubsetName and "
            "canarySubsetName are required: the local mesh splits by subset",
        )
        return None
    if names[1] == names[2]:
        out.refuse(where, f"{path}.destinationRule", "the stable and canary subsets must differ")
        return None
    return _Routing(
        vs_name, tuple(str(r) for r in routes), str(names[0]), str(names[1]), str(names[2])
    )


def _template(spec: Json, where: str, out: Refusals) -> tuple[Json, dict[str, str]]:
    template = _map(spec, "template")
    selector = _map(spec, "selector")
    if "workloadRef" in spec:
        return {}, {}
    if not template or not _map(template, "spec"):
        out.refuse(where, "spec.template", "a pod template is required")
        return {}, {}
    if "matchExpressions" in selector:
        out.refuse(where, "spec.selector.matchExpressions", "only matchLabels is supported")
    match = _map(selector, "matchLabels")
    labels = _map(_map(template, "metadata"), "labels")
    if not match:
        out.refuse(where, "spec.selector.matchLabels", "a selector is required")
    elif any(labels.get(k) != v for k, v in match.items()):
        out.refuse(where, "spec.selector", "does not match spec.template.metadata.labels")
    if REVISION_LABEL in labels:
        out.refuse(
            where,
            f"spec.template.metadata.labels.{REVISION_LABEL}",
            "is set by the rollout, not by you",
        )
    return template, {str(k): str(v) for k, v in match.items()}


def _stable_hash(state: MeshState, routing: _Routing | None) -> str | None:
    """The revision the DestinationRule's stable subset selects now, if it still runs."""
    if routing is None or state.applied_rule is None:
        return None
    for subset in _list(_map(state.applied_rule, "spec").get("subsets")):
        if subset.get("name") == routing.stable_subset:
            found = _map(subset, "labels").get(REVISION_LABEL)
            if isinstance(found, str) and found in state.revisions:
                replicas = _map(state.revisions[found], "spec").get("replicas", 1)
                return found if replicas != 0 else None
    return None


# --- steps and analysis ------------------------------------------------------------------------


def _steps(
    canary: Json,
    spec: Json,
    rollout: Json,
    state: MeshState,
    stable_hash: str,
    latest_hash: str,
    where: str,
    out: Refusals,
) -> tuple[list[dict[str, object]], list[ArgoMetric]]:
    steps: list[dict[str, object]] = []
    metrics: list[ArgoMetric] = []
    hashes = {"Stable": stable_hash, "Latest": latest_hash}
    background = _map(canary, "analysis")
    if background:
        path = "spec.strategy.canary.analysis"
        if "startingStep" in background:
            out.warn(
                where,
                f"{path}.startingStep",
                "not mapped: the metrics are judged from the first step",
            )
        metrics += _analysis(background, rollout, state, hashes, where, path, out)
    for index, raw in enumerate(_list(canary.get("steps"))):
        path = f"spec.strategy.canary.steps[{index}]"
        for key, why in _REFUSED_STEPS.items():
            if key in raw:
                out.refuse(where, f"{path}.{key}", why)
        if "setCanaryScale" in raw:
            out.warn(
                where,
                f"{path}.setCanaryScale",
                "not mapped: the canary revision runs the Rollout's replicas from the start",
            )
        if "setWeight" in raw:
            weight = raw["setWeight"]
            if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
                out.refuse(where, f"{path}.setWeight", f"{weight!r}: must be 0 to 100")
            steps.append({"setWeight": weight})
        elif "pause" in raw:
            steps.append({"pause": _pause(raw.get("pause"), where, f"{path}.pause", out)})
        elif "analysis" in raw:
            step_metrics = _analysis(
                _map(raw, "analysis"), rollout, state, hashes, where, f"{path}.analysis", out
            )
            if step_metrics:
                out.warn(
                    where,
                    f"{path}.analysis",
                    "its metrics are judged in every step, as "
                    "are all the Rollout's (our Canary has one set of metrics)",
                )
            metrics += step_metrics
            steps.append(
                {"analysis": {"duration": _seconds(_step_length(step_metrics, where, path, out))}}
            )
    if not steps:
        steps.append({"setWeight": 100})  # Argo without steps goes straight to 100%
    unique: dict[str, ArgoMetric] = {}
    for metric in metrics:
        unique.setdefault(metric.name, metric)
    return steps, list(unique.values())


def _pause(value: object, where: str, path: str, out: Refusals) -> dict[str, object]:
    pause = value if isinstance(value, Mapping) else {}
    duration = pause.get("duration")
    if duration is None:
        return {}
    if isinstance(duration, int) and not isinstance(duration, bool) and duration > 0:
        return {"duration": f"{duration}s"}
    if isinstance(duration, str) and duration.isdigit() and int(duration) > 0:
        return {"duration": f"{duration}s"}
    if isinstance(duration, str) and duration[:-1].isdigit() and duration[-1:] in ("s", "m", "h"):
        return {"duration": duration}
    out.refuse(
        where,
        f"{path}.duration",
        f"{duration!r}: must be seconds or a duration such as 30s, 5m, 1h",
    )
    return {}


def _analysis(
    block: Json,
    rollout: Json,
    state: MeshState,
    hashes: Mapping[str, str],
    where: str,
    path: str,
    out: Refusals,
) -> list[ArgoMetric]:
    namespace = str(_map(rollout, "metadata").get("namespace") or "default")
    if block.get("dryRun"):
        out.refuse(where, f"{path}.dryRun", "dry-run metrics are not supported")
    for noted in ("measurementRetention", "analysisRunMetadata"):
        if noted in block:
            out.warn(where, f"{path}.{noted}", "not mapped")
    given = _rollout_args(_list(block.get("args")), rollout, hashes, where, f"{path}.args", out)
    metrics: list[ArgoMetric] = []
    templates = _list(block.get("templates"))
    if not templates:
        out.refuse(where, f"{path}.templates", "an analysis needs templates")
    for index, ref in enumerate(templates):
        name = ref.get("templateName")
        cluster = ref.get("clusterScope") is True
        key: TemplateKey = (
            "ClusterAnalysisTemplate" if cluster else "AnalysisTemplate",
            "" if cluster else namespace,
            str(name),
        )
        found = state.templates.get(key)
        if found is None and not state.templates_complete:
            continue
        if found is None:
            what = (
                f"ClusterAnalysisTemplate {name}"
                if cluster
                else (f"AnalysisTemplate {namespace}/{name}")
            )
            out.refuse(
                where, f"{path}.templates[{index}]", f"{what} is neither in the input nor applied"
            )
            continue
        metrics += template_metrics(key[0], found, given, out)
    return metrics


def _rollout_args(
    args: Sequence[Json],
    rollout: Json,
    hashes: Mapping[str, str],
    where: str,
    path: str,
    out: Refusals,
) -> dict[str, str]:
    metadata = _map(rollout, "metadata")
    values: dict[str, str] = {}
    for index, arg in enumerate(args):
        name, here = arg.get("name"), f"{path}[{index}]"
        if not isinstance(name, str):
            out.refuse(where, f"{here}.name", "an argument needs a name")
            continue
        if isinstance(arg.get("value"), str):
            values[name] = str(arg["value"])
            continue
        source = _map(arg, "valueFrom")
        hash_of = source.get("podTemplateHashValue")
        field_path = _map(source, "fieldRef").get("fieldPath")
        if isinstance(hash_of, str) and hash_of in hashes:
            values[name] = hashes[hash_of]
        elif isinstance(field_path, str) and (found := _field(metadata, field_path)) is not None:
            values[name] = found
        else:
            out.refuse(
                where,
                here,
                "an argument's value must be given as value, "
                "valueFrom.podTemplateHashValue (Stable or Latest) or "
                "valueFrom.fieldRef to the Rollout's metadata",
            )
    return values


def _field(metadata: Json, path: str) -> str | None:
    """``metadata.name``, ``metadata.namespace``, ``metadata.labels['k']`` of the Rollout."""
    if path in ("metadata.name", "metadata.namespace"):
        value = metadata.get(path.split(".")[1]) or ("default" if "namespace" in path else None)
        return str(value) if value is not None else None
    for section in ("labels", "annotations"):
        prefix = f"metadata.{section}["
        if path.startswith(prefix) and path.endswith("]"):
            key = path[len(prefix) : -1].strip("'\"")
            value = _map(metadata, section).get(key)
            return str(value) if value is not None else None
    return None


def _step_length(metrics: Sequence[ArgoMetric], where: str, path: str, out: Refusals) -> float:
    """How long a step's analysis runs in Argo: its longest metric's count x interval."""
    longest = 0.0
    for metric in metrics:
        interval = metric.interval.total_seconds() if metric.interval else None
        if interval is not None and metric.count is None:
            out.refuse(
                where,
                path,
                f"metric {metric.name} has an interval but no count: it "
                "would run until the rollout ends, so the step would never pass",
            )
            continue
        longest = max(longest, (interval or 0.0) * (metric.count or 1))
    return longest


def _seconds(seconds: float) -> str:
    return f"{max(1, round(seconds))}s"


# --- what is written ---------------------------------------------------------------------------


def _revisions(
    name: str,
    namespace: str,
    template: Json,
    selector: Mapping[str, str],
    replicas: int,
    state: MeshState,
    stable_hash: str,
    canary_hash: str | None,
    spec: Json,
) -> list[dict[str, object]]:
    """Every revision's Deployment: the stable and canary running, the others at zero."""
    numbers = [_revision_number(d) for d in state.revisions.values()]
    documents = []
    for found_hash, found in sorted(state.revisions.items()):
        if found_hash in (stable_hash, canary_hash):
            continue
        scaled = copy.deepcopy(dict(found))
        scaled["spec"] = {**_map(found, "spec"), "replicas": 0}
        documents.append(scaled)
    for revision_hash in (stable_hash, canary_hash):
        if revision_hash is None:
            continue
        existing = state.revisions.get(revision_hash)
        number = _revision_number(existing) if existing else max(numbers, default=0) + 1
        # The stable keeps the template it was made from (the input holds the new one).
        body = _map(_map(existing, "spec"), "template") if existing else template
        documents.append(
            _deployment(name, namespace, revision_hash, body, selector, replicas, number, spec)
        )
    return documents


def _deployment(
    name: str,
    namespace: str,
    revision_hash: str,
    template: Json,
    selector: Mapping[str, str],
    replicas: int,
    number: int,
    spec: Json,
) -> dict[str, object]:
    body = copy.deepcopy(dict(template))
    meta = dict(_map(body, "metadata"))
    meta["labels"] = {**_map(meta, "labels"), REVISION_LABEL: revision_hash}
    body["metadata"] = meta
    deployment_spec: dict[str, object] = {
        "replicas": replicas,
        "selector": {"matchLabels": {**selector, REVISION_LABEL: revision_hash}},
        "template": body,
    }
    if isinstance(spec.get("minReadySeconds"), int):
        deployment_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(name, revision_hash),
            "namespace": namespace,
            "labels": {ROLLOUT_LABEL: name, REVISION_LABEL: revision_hash},
            "annotations": {REVISION_ANNOTATION: str(number)},
        },
        "spec": deployment_spec,
    }


def _revision_number(document: Json | None) -> int:
    value = _map(_map(document or {}, "metadata"), "annotations").get(REVISION_ANNOTATION)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def _labelled_rule(
    routing: _Routing,
    state: MeshState,
    namespace: str,
    name: str,
    stable_hash: str,
    canary_hash: str | None,
) -> dict[str, object]:
    rule = state.destination_rule
    if rule is None:
        raise ConfigError(
            f"Rollout {namespace}/{name}: DestinationRule {namespace}/{routing.destination_rule} "
            "(spec.strategy.canary.trafficRouting.istio.destinationRule.name) is neither in the "
            "input nor applied"
        )
    labels = {routing.stable_subset: stable_hash, routing.canary_subset: canary_hash or stable_hash}
    out = copy.deepcopy(dict(rule))
    meta = dict(_map(out, "metadata"))
    meta["annotations"] = {**_map(meta, "annotations"), MANAGED_BY_ANNOTATION: name}
    out["metadata"] = meta
    spec = dict(_map(out, "spec"))
    subsets = []
    found = set()
    for subset in _list(spec.get("subsets")):
        subset = dict(subset)
        subset_name = str(subset.get("name"))
        if subset_name in labels:
            found.add(subset_name)
            subset["labels"] = {**_map(subset, "labels"), REVISION_LABEL: labels[subset_name]}
        subsets.append(subset)
    missing = sorted(set(labels) - found)
    if missing:
        raise ConfigError(
            f"Rollout {namespace}/{name}: DestinationRule {namespace}/{routing.destination_rule} "
            f"has no subset {', '.join(missing)} (stableSubsetName/canarySubsetName)"
        )
    spec["subsets"] = subsets
    out["spec"] = spec
    return out


def _canary_manifest(
    name: str,
    namespace: str,
    host: str,
    routing: _Routing,
    stable_hash: str,
    canary_hash: str,
    steps: list[dict[str, object]],
    metrics: list[ArgoMetric],
    spec: Json,
    notifications: list[dict[str, object]],
    rollout_id: str,
) -> dict[str, object]:
    target: dict[str, object] = {
        "host": host,
        "virtualService": routing.virtual_service,
        "stableSubset": routing.stable_subset,
        "canarySubset": routing.canary_subset,
        "revisions": {
            "destinationRule": routing.destination_rule,
            "stableHash": stable_hash,
            "canaryHash": canary_hash,
        },
    }
    if routing.routes:
        target["routes"] = list(routing.routes)
    body: dict[str, object] = {"target": target, "strategy": {"canary": {"steps": steps}}}
    if metrics:
        intervals = [m.interval for m in metrics if m.interval is not None]
        analysis: dict[str, object] = {
            "judge": "threshold",
            "failureLimit": min(m.failure_limit for m in metrics) + 1,
            "metrics": [m.check() for m in metrics],
        }
        if intervals:
            analysis["interval"] = _seconds(min(intervals).total_seconds())
        body["analysis"] = analysis
    else:
        body["skipAnalysis"] = True
    deadline = spec.get("progressDeadlineSeconds")
    if isinstance(deadline, int) and deadline > 0:
        body["progressDeadline"] = f"{deadline}s"
    if notifications:
        body["notifications"] = notifications
    return {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {ROLLOUT_LABEL: name},
            "annotations": {ROLLOUT_ID_ANNOTATION: rollout_id},
        },
        "spec": body,
    }


def _notifications(metadata: Json, where: str, out: Refusals) -> list[dict[str, object]]:
    """Argo's ``notifications.argoproj.io/subscribe.<trigger>.<service>`` annotations as
    subscriptions to the AlertProvider named after the service."""
    events: dict[str, list[str]] = {}
    for key, recipients in sorted(_map(metadata, "annotations").items()):
        if not key.startswith(NOTIFY_PREFIX):
            continue
        trigger, _, service = key[len(NOTIFY_PREFIX) :].partition(".")
        path = f"metadata.annotations[{key}]"
        event = _TRIGGERS.get(trigger)
        if event is None or not service:
            out.warn(
                where,
                path,
                f"trigger {trigger} is not mapped (mapped: {', '.join(sorted(_TRIGGERS))})",
            )
            continue
        wanted = events.setdefault(service, [])
        if event not in wanted:
            wanted.append(event)
        if recipients:
            out.warn(
                where,
                path,
                f"goes to the AlertProvider {service} (its channel or address; "
                f"recipient {recipients} is not used)",
            )
    return [
        {"providerRef": {"name": service}, "events": wanted}
        for service, wanted in sorted(events.items())
    ]


def _prune(state: MeshState, keep: set[str | None], limit: int) -> tuple[str, ...]:
    """Scaled-down revisions beyond ``revisionHistoryLimit``, oldest first."""
    old = [h for h in state.revisions if h not in keep]
    old.sort(key=lambda h: _revision_number(state.revisions[h]))
    extra = max(len(old) - max(limit, 0), 0)
    return tuple(str(_map(state.revisions[h], "metadata").get("name")) for h in old[:extra])


def _list(value: object) -> list[Json]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _map(data: Json | None, key: str) -> Json:
    value = data.get(key) if data is not None else None
    return value if isinstance(value, Mapping) else {}
