"""The ``Canary`` and ``AlertProvider`` CustomResourceDefinitions, generated from the pydantic
models (:class:`canarymesh.api.canary.Canary`, :class:`canarymesh.api.notifications.
AlertProviderSpec`) so the two cannot drift. Pure; ``python -m
canarymesh.runtime.kube.crd`` prints it (``deploy/crd.yaml`` is that output, and a unit test
regenerates it and compares).

pydantic's JSON Schema is turned into a *structural* schema, as apiextensions.k8s.io/v1
requires: ``$ref`` inlined, ``Optional`` unions reduced to their one type (omitting a field is
how a Canary says "unset"), no ``additionalProperties: false`` (the API server refuses it next
to ``properties``; it prunes unknown fields instead, and ``kubectl apply``'s strict field
validation reports them), free-form objects marked ``x-kubernetes-preserve-unknown-fields``.

Where a rule of :mod:`canarymesh.api.validate_canary` can be said in a schema, it is added here
(weights within 0..100, a step sets exactly one of its fields, durations in Go syntax), so the
API server refuses such a Canary before the controller sees it. Rules that need more than one
field (weights must increase) stay with the controller, which reports them as conditions.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from canarymesh.api import base
from canarymesh.api.canary import API_GROUP, Canary
from canarymesh.api.notifications import AlertProviderSpec

__all__ = [
    "ALERT_PROVIDER_PLURAL",
    "CRD_NAME",
    "PLURAL",
    "VERSION",
    "alert_provider_schema",
    "build_alert_provider_crd",
    "build_crd",
    "canary_schema",
    "render",
]

PLURAL = "canaries"
VERSION = "v1alpha1"
CRD_NAME = f"{PLURAL}.{API_GROUP}"
# Who hears about rollouts (canarymesh.api.notifications): read by the operator's notifier.
ALERT_PROVIDER_PLURAL = "alertproviders"
# Go's time.ParseDuration units, one or more parts (1h30m); validate_canary also checks >= 1ms.
DURATION_PATTERN = r"^(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$"
# Bounds validate_canary checks (CM0103), keyed by (model, field alias).
BOUNDS: dict[tuple[str, str], dict[str, Any]] = {
    ("CanaryStep", "setWeight"): {"minimum": 0, "maximum": 100},
    ("CanaryStrategy", "stepWeight"): {"minimum": 1, "maximum": 100},
    ("CanaryStrategy", "maxWeight"): {"minimum": 1, "maximum": 100},
    ("MirrorStrategy", "percentage"): {"minimum": 0, "maximum": 100},
    # OpenAPI 3.0 writes exclusive bounds as booleans, JSON Schema 7 as numbers: inclusive bounds
    # read the same in both; the open ends (alpha 0 or 1, rps 0) are left to validation.
    ("AnalysisSpec", "alpha"): {"minimum": 0, "maximum": 1},
    ("AnalysisSpec", "failureLimit"): {"minimum": 0},
    ("AnalysisSpec", "minRequests"): {"minimum": 0},
    ("LoadGeneratorSpec", "rps"): {"minimum": 0},
    ("Target", "port"): {"minimum": 1, "maximum": 65535},
}
# A step is exactly one of setWeight, pause, analysis (CM0601).
ONE_FIELD = {"CanaryStep"}
_DROPPED = {"title", "default"}


class _Generator(GenerateJsonSchema):
    """pydantic's generator, plus a pattern on every ``Duration`` field."""

    def function_before_schema(
        self, schema: core_schema.BeforeValidatorFunctionSchema
    ) -> JsonSchemaValue:
        out = super().function_before_schema(schema)
        if schema["function"].get("function") is base._duration_text:
            out = {**out, "pattern": DURATION_PATTERN}
        return out


def canary_schema() -> dict[str, Any]:
    """The structural openAPIV3Schema of a Canary's ``spec``."""
    return _spec_schema(Canary, "Canary")


def alert_provider_schema() -> dict[str, Any]:
    """The structural openAPIV3Schema of an AlertProvider's ``spec``."""
    return _spec_schema(AlertProviderSpec, "AlertProviderSpec")


def _spec_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, schema_generator=_Generator)
    defs: dict[str, Any] = raw.pop("$defs", {})
    schema: dict[str, Any] = _structural(raw, defs, name)
    return schema


def _structural(node: Any, defs: dict[str, Any], model: str | None) -> Any:
    if isinstance(node, list):
        return [_structural(item, defs, None) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _structural(copy.deepcopy(defs[name]), defs, name)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1:
            merged = {**{k: v for k, v in node.items() if k != "anyOf"}, **branches[0]}
            return _structural(merged, defs, model)
        types = {b.get("type") for b in branches}
        if types == {"integer", "string"}:
            return {"x-kubernetes-int-or-string": True}
        raise ValueError(f"no structural form for the union {node['anyOf']}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key == "additionalProperties" and value is False:
            continue
        if key == "properties":
            out[key] = {
                field: _bounded(_structural(sub, defs, None), model, field)
                for field, sub in value.items()
            }
        elif key == "additionalProperties":
            free = _free_form(value, defs)
            if free == {"x-kubernetes-preserve-unknown-fields": True}:
                # Any value at all (a whole Kubernetes object): the object is kept as written.
                out["x-kubernetes-preserve-unknown-fields"] = True
            else:
                out[key] = free
        elif key == "description":
            out[key] = " ".join(str(value).split())
        else:
            out[key] = _structural(value, defs, None)
    if model in ONE_FIELD and "properties" in out:
        out["minProperties"] = out["maxProperties"] = 1
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _free_form(value: Any, defs: dict[str, Any]) -> Any:
    if value is True or value == {}:
        return {"x-kubernetes-preserve-unknown-fields": True}
    return _structural(value, defs, None)


def _bounded(schema: dict[str, Any], model: str | None, field: str) -> dict[str, Any]:
    extra = BOUNDS.get((model or "", field))
    return {**schema, **extra} if extra else schema


def status_schema() -> dict[str, Any]:
    """What :mod:`canarymesh.runtime.kube.status` writes; ``rolloutState`` is the controller's
    own resumable state (``CanaryState.to_dict()``), kept as it is."""
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "observedGeneration": {"type": "integer"},
        },
    }
    return {
        "type": "object",
        "properties": {
            "phase": {"type": "string"},
            "canaryWeight": {"type": "integer"},
            "stableSubset": {"type": "string"},
            "step": {"type": "integer"},
            "failedChecks": {"type": "integer"},
            "message": {"type": "string"},
            "observedGeneration": {"type": "integer"},
            "lastDecision": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string"},
                    "at": {"type": "string", "format": "date-time"},
                },
            },
            "conditions": {
                "type": "array",
                "items": condition,
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "rolloutState": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }


def build_crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object."""
    spec = canary_schema()
    spec["required"] = sorted(set(spec.get("required", [])) | {"target"})
    return _definition(
        CRD_NAME,
        {"kind": "Canary", "listKind": "CanaryList", "plural": PLURAL, "singular": "canary",
         "shortNames": ["cmc"], "categories": ["canarymesh"]},
        "A progressive rollout of one Service between two subsets, judged by its metrics "
        "(Canary Mesh).",
        _columns(),
        {"spec": spec, "status": status_schema()},
    )  # fmt: skip


def build_alert_provider_crd() -> dict[str, Any]:
    """The AlertProvider CustomResourceDefinition (a receiver of rollout notifications; with
    ``meshWide``, of every Canary's in the cluster)."""
    spec = alert_provider_schema()
    spec["required"] = sorted(set(spec.get("required", [])) | {"type"})
    columns = [
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _definition(
        f"{ALERT_PROVIDER_PLURAL}.{API_GROUP}",
        {"kind": "AlertProvider", "listKind": "AlertProviderList",
         "plural": ALERT_PROVIDER_PLURAL, "singular": "alertprovider",
         "categories": ["canarymesh"]},
        "Where rollout notifications go: Slack, Microsoft Teams, Discord, a signed webhook or "
        "Alertmanager (Canary Mesh).",
        columns,
        {"spec": spec},
    )  # fmt: skip


def _definition(
    name: str,
    names: dict[str, Any],
    description: str,
    columns: list[dict[str, Any]],
    properties: dict[str, Any],
) -> dict[str, Any]:
    """One namespaced CustomResourceDefinition of our group, served and stored at VERSION; the
    status subresource when the kind has a status."""
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True}
    if "status" in properties:
        version["subresources"] = {"status": {}}
    version["additionalPrinterColumns"] = columns
    version["schema"] = {
        "openAPIV3Schema": {
            "type": "object",
            "description": description,
            "required": ["spec"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                **properties,
            },
        }
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "canarymesh"}},
        "spec": {"group": API_GROUP, "names": names, "scope": "Namespaced",
                 "versions": [version]},
    }  # fmt: skip


def _columns() -> list[dict[str, Any]]:
    return [
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
        {"name": "Step", "type": "integer", "jsonPath": ".status.step"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.lastDecision.reason",
         "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]  # fmt: skip


HEADER = (
    "# Generated by `python -m canarymesh.runtime.kube.crd` from canarymesh.api.canary and\n"
    "# canarymesh.api.notifications;\n"
    "# do not edit (tests/unit/kube/test_crd.py regenerates it and compares).\n"
)


def render() -> str:
    documents = [build_crd(), build_alert_provider_crd()]
    return HEADER + yaml.safe_dump_all(documents, sort_keys=False, width=100, allow_unicode=True)


if __name__ == "__main__":
    sys.stdout.write(render())
