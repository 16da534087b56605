"""Other tools' kinds in the input of ``canarymesh apply`` and ``rollout start``: Argo Rollouts'
``Rollout``, ``AnalysisTemplate`` and ``ClusterAnalysisTemplate``, Flagger's ``Canary`` and
``AlertProvider``. The shell around the pure translations (:mod:`canarymesh.api.argo`,
:mod:`canarymesh.api.flagger`): it reads what the mesh holds now (the DestinationRule's
revision labels, the Rollout's Deployments, applied templates, the running rollout) and turns
the input into what the control plane applies, in one atomic change.

* A Rollout becomes its revisions' Deployments, its DestinationRule with the revision labels
  and, while a canary runs, a Canary; the Rollout itself is stored as written. A new canary
  revision in the middle of a rollout resets the managed routes to 0% in the same apply, so
  no request reaches pods that are still starting.
* Templates are checked (providers, conditions) and stored, so a later Rollout finds them.
* Flagger's Canary becomes ours, Flagger's AlertProvider ours.

Every refusal of the whole input is reported at once, and nothing is applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from canarymesh.api.argo import (
    ARGO_API_VERSION,
    ROLLOUT_LABEL,
    MeshState,
    TemplateKey,
    analysis_template_problems,
    translate_rollout,
)
from canarymesh.api.argo_analysis import ANALYSIS_KINDS, ARGO_GROUP
from canarymesh.api.canary import REVISION_LABEL, Canary
from canarymesh.api.flagger import (
    FLAGGER_API_VERSION,
    translate_flagger,
    translate_flagger_provider,
)
from canarymesh.cli.common import state_dir
from canarymesh.errors import ConfigError
from canarymesh.ports import state_of
from canarymesh.rollout.actions import Weights
from canarymesh.rollout.phases import TERMINAL
from canarymesh.routing.virtual_service import managed_virtual_service
from canarymesh.runtime.local.api_client import ApiClient
from canarymesh.runtime.local.api_models import (
    CANARY_KIND,
    DEPLOYMENT_KIND,
    DESTINATION_RULE_KIND,
    VIRTUAL_SERVICE_KIND,
    DocumentText,
)
from canarymesh.runtime.local.rollout_store import RolloutStore

__all__ = [
    "TRANSLATED",
    "Translated",
    "deletions",
    "has_argo",
    "in_progress",
    "is_translated",
    "translate_inputs",
]

Doc = dict[str, Any]
# (API group, kind) of the documents translated here.
TRANSLATED = frozenset(
    {
        (ARGO_GROUP, "Rollout"),
        (ARGO_GROUP, "AnalysisTemplate"),
        (ARGO_GROUP, "ClusterAnalysisTemplate"),
        ("flagger.app", "Canary"),
        ("flagger.app", "AlertProvider"),
    }
)
_TEMPLATE_KINDS = {
    "AnalysisTemplate": "analysistemplate.argoproj.io",
    "ClusterAnalysisTemplate": "clusteranalysistemplate.argoproj.io",
}


def is_translated(api_version: str, kind: str) -> bool:
    return (api_version.rpartition("/")[0], kind) in TRANSLATED


def has_argo(text: str) -> bool:
    """Whether a YAML stream holds an Argo Rollouts document."""
    return any(
        isinstance(d, dict) and str(d.get("apiVersion", "")).startswith(f"{ARGO_GROUP}/")
        for d in yaml.safe_load_all(text)
    )


def in_progress(key: str, rollout_id: str) -> str | None:
    """Why the rollout ``rollout_id`` of ``key`` stands in the way (it has not ended), or None."""
    record = RolloutStore(state_dir()).load(key)
    state = state_of(record) if record and record.get("rolloutId") == rollout_id else None
    if state is None or state.phase in TERMINAL:
        return None
    return f"its rollout {rollout_id} is {state.phase.value}"


@dataclass
class Translated:
    """What to apply, what to delete afterwards (revisions beyond their history limit), a line
    per Rollout for the user, and a warning per field left behind."""

    texts: list[DocumentText]
    prune: list[DocumentText] = field(default_factory=list)
    summaries: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    generated: list[DocumentText] = field(default_factory=list)
    canaries: list[str] = field(default_factory=list)  # namespace/name of Canaries applied


@dataclass
class _Input:
    text: DocumentText
    docs: list[Doc]
    changed: bool = False


def _documents(text: DocumentText) -> list[Doc]:
    docs = []
    for doc in yaml.safe_load_all(text.text):
        if not isinstance(doc, dict):
            continue
        meta = doc.setdefault("metadata", {})
        if isinstance(meta, dict) and doc.get("kind") != "ClusterAnalysisTemplate":
            meta["namespace"] = meta.get("namespace") or text.namespace or "default"
        docs.append(doc)
    return docs


def _foreign(doc: Doc) -> bool:
    return str(doc.get("apiVersion", "")).startswith((f"{ARGO_GROUP}/", "flagger.app/"))


def _key(doc: Doc) -> tuple[str, str, str]:
    meta = doc.get("metadata") or {}
    return str(doc.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name"))


def translate_inputs(
    texts: Sequence[DocumentText],
    api: Callable[[], ApiClient],
    *,
    stamp: str | None = None,
    in_progress: Callable[[str, str], str | None] = lambda key, rollout_id: None,
) -> Translated:
    """The input with every foreign document translated. ``api`` is called only when a Rollout
    needs the mesh's state; ``stamp`` (``rollout start``) gives new canaries a fresh rollout id;
    ``in_progress(key, rollout id)`` says why a running rollout stands in the way (or None)."""
    inputs = [_Input(t, _documents(t)) for t in texts]
    if not any(_foreign(d) for i in inputs for d in i.docs):
        return Translated(list(texts))
    out = Translated([])
    refused: list[str] = []
    templates: dict[TemplateKey, Doc] = {}
    for item in inputs:
        for index, doc in enumerate(item.docs):
            kind = str(doc.get("kind"))
            if doc.get("apiVersion") == ARGO_API_VERSION and kind in ANALYSIS_KINDS:
                templates[_key(doc)] = doc
                problems, warnings = analysis_template_problems(kind, doc)
                refused += [f"{item.text.source}: {p}" for p in problems]
                out.warnings += [f"warning: {item.text.source}: {w}" for w in warnings]
            elif doc.get("apiVersion") == FLAGGER_API_VERSION and kind in (
                "Canary",
                "AlertProvider",
            ):
                item.docs[index] = _flagger(doc, item.text.source, out, refused)
                item.changed = True
    rollouts = [(i, d) for i in inputs for d in i.docs if _is_rollout(d)]
    for item, rollout in rollouts:
        try:
            _rollout(item, rollout, inputs, templates, api, stamp, in_progress, out)
        except ConfigError as err:
            refused += [f"{item.text.source}: {line}" for line in str(err).splitlines()]
    if refused:
        raise ConfigError("\n".join(refused))
    for item in inputs:
        if item.changed:
            text = yaml.safe_dump_all(item.docs, sort_keys=False)
            out.texts.append(
                DocumentText(source=item.text.source, text=text, namespace=item.text.namespace)
            )
        else:
            out.texts.append(item.text)
    out.texts += out.generated
    out.warnings = list(dict.fromkeys(out.warnings))
    return out


def _is_rollout(doc: Doc) -> bool:
    return doc.get("apiVersion") == ARGO_API_VERSION and doc.get("kind") == "Rollout"


def _flagger(doc: Doc, source: str, out: Translated, refused: list[str]) -> Doc:
    try:
        if doc.get("kind") == "AlertProvider":
            manifest, warnings = translate_flagger_provider(doc)
            out.warnings += [f"warning: {source}: {w}" for w in warnings]
            return manifest
        translation = translate_flagger(doc)
    except ConfigError as err:
        refused.append(f"{source}: {err}")
        return doc
    out.warnings += [f"warning: {source}: Flagger Canary: {w}" for w in translation.warnings]
    manifest = translation.to_manifest()
    namespace = (doc.get("metadata") or {}).get("namespace")
    return {**manifest, "metadata": {"name": translation.name, "namespace": namespace}}


def _rollout(
    item: _Input,
    rollout: Doc,
    inputs: Sequence[_Input],
    templates: dict[TemplateKey, Doc],
    api: Callable[[], ApiClient],
    stamp: str | None,
    in_progress: Callable[[str, str], str | None],
    out: Translated,
) -> None:
    _, namespace, name = _key(rollout)
    client = api()
    istio = (((rollout.get("spec") or {}).get("strategy") or {}).get("canary") or {}).get(
        "trafficRouting", {}
    ).get("istio") or {}
    rule_name = str((istio.get("destinationRule") or {}).get("name", ""))
    vs_name = str((istio.get("virtualService") or {}).get("name", ""))
    input_rule = _find(inputs, "DestinationRule", namespace, rule_name)
    applied_rule = _one(client.resources([DESTINATION_RULE_KIND], namespace, rule_name), namespace)
    revisions = {
        str(d["metadata"]["labels"][REVISION_LABEL]): d
        for d in client.resources([DEPLOYMENT_KIND], namespace)
        if (d.get("metadata") or {}).get("namespace") == namespace
        and ((d.get("metadata") or {}).get("labels") or {}).get(ROLLOUT_LABEL) == name
        and REVISION_LABEL in ((d.get("metadata") or {}).get("labels") or {})
    }
    known = dict(templates)
    for kind, display in _TEMPLATE_KINDS.items():
        scope = None if kind == "ClusterAnalysisTemplate" else namespace
        for doc in client.resources([display], scope):
            known.setdefault(_key(doc), doc)
    state = MeshState(
        destination_rule=input_rule[1] if input_rule else applied_rule,
        applied_rule=applied_rule,
        revisions=revisions,
        templates=known,
    )
    translation = translate_rollout(rollout, state, rollout_id=stamp)
    applied_canary = _one(client.resources([CANARY_KIND], namespace, name), namespace)
    previous = _canary_hash(applied_canary)
    if applied_canary is not None and previous != translation.canary_hash:
        annotations = (applied_canary.get("metadata") or {}).get("annotations") or {}
        blocker = in_progress(
            f"{namespace}/{name}", str(annotations.get("canarymesh.io/rollout-id"))
        )
        if blocker is not None and translation.canary_hash is None:
            raise ConfigError(
                f"Rollout {namespace}/{name}: {blocker}: abort it first (`canarymesh rollout "
                f"abort {name} -n {namespace}`), then apply again"
            )
    generated: list[Doc] = [dict(d) for d in translation.documents]
    if input_rule is not None:
        holder, doc = input_rule
        holder.docs.remove(doc)
        holder.changed = True
    if translation.canary is not None and previous != translation.canary_hash:
        vs = _find(inputs, "VirtualService", namespace, vs_name)
        current = (
            vs[1]
            if vs
            else _one(client.resources([VIRTUAL_SERVICE_KIND], namespace, vs_name), namespace)
        )
        if current is not None:
            reset = _reset(current, translation.canary, name)
            if vs is not None:
                vs[0].docs.remove(vs[1])
                vs[0].changed = True
            generated.append(reset)
    source = f"{item.text.source} (Rollout {namespace}/{name})"
    text = yaml.safe_dump_all(generated, sort_keys=False)
    out.generated.append(DocumentText(source=source, text=text))
    if translation.prune:
        deleted = [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": n, "namespace": namespace},
            }
            for n in translation.prune
        ]
        out.prune.append(DocumentText(source=source, text=yaml.safe_dump_all(deleted)))
    out.summaries.append(f"rollout.argoproj.io/{name}: {translation.summary}")
    out.warnings += [f"warning: {item.text.source}: {w}" for w in translation.warnings]
    if translation.canary is not None:
        out.canaries.append(f"{namespace}/{name}")


def _reset(vs: Doc, canary: Canary, name: str) -> Doc:
    """The VirtualService with the canary at 0% (a new revision starts from nothing)."""
    return managed_virtual_service(vs, canary, name, Weights(0, canary.stable_subset()))


def _canary_hash(doc: Doc | None) -> str | None:
    if doc is None:
        return None
    revisions = ((doc.get("spec") or {}).get("target") or {}).get("revisions") or {}
    found = revisions.get("canaryHash")
    return str(found) if found is not None else None


def _find(
    inputs: Sequence[_Input], kind: str, namespace: str, name: str
) -> tuple[_Input, Doc] | None:
    for item in inputs:
        for doc in item.docs:
            if _key(doc) == (kind, namespace, name):
                return item, doc
    return None


def _one(docs: Sequence[Doc], namespace: str) -> Doc | None:
    found = [d for d in docs if (d.get("metadata") or {}).get("namespace") == namespace]
    return dict(found[0]) if found else None


def deletions(texts: Sequence[DocumentText], api: Callable[[], ApiClient]) -> list[DocumentText]:
    """For ``delete -f``: what a Rollout made goes with it (its Deployments and its Canary)."""
    extra = []
    for text in texts:
        for doc in _documents(text):
            if not _is_rollout(doc):
                continue
            _, namespace, name = _key(doc)
            made = [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": d["metadata"]["name"], "namespace": namespace},
                }
                for d in api().resources([DEPLOYMENT_KIND], namespace)
                if ((d.get("metadata") or {}).get("labels") or {}).get(ROLLOUT_LABEL) == name
            ]
            if _one(api().resources([CANARY_KIND], namespace, name), namespace) is not None:
                made.append(
                    {
                        "apiVersion": "canarymesh.io/v1alpha1",
                        "kind": "Canary",
                        "metadata": {"name": name, "namespace": namespace},
                    }
                )
            extra.append(
                DocumentText(
                    source=f"{text.source} (Rollout {namespace}/{name})",
                    text=yaml.safe_dump_all(made),
                )
            )
    return extra
