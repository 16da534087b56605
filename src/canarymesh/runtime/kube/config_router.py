"""The controller's :class:`~canarymesh.ports.TrafficRouter` for a config canary on a cluster: a
Canary with ``spec.config`` runs its changed VirtualService, DestinationRule or
AuthorizationPolicy on a share of the pods, split the way the local mesh splits it
(:func:`canarymesh.routing.config_split.split_documents`, shared), selected by the pod label
``canarymesh.io/config-canary`` = ``canary`` | ``stable``, which istiod reads off the pods as
it reads any workload label. Shell; one per Canary, built by the in-cluster entry point.

``Weights.canary`` is the percent of the affected pods on the changed config:

* the **clients** of the target host for a routing change: the running meshed pods (an
  ``istio-proxy`` container or a ``sidecar.istio.io/status`` annotation; gateways, whose proxy
  runs as ``router``, never take mesh routes) of the Canary's namespace, less the pods the
  target's Service selects; for a **policy**, the pods its selector selects (the changed
  policy's and the current one's: a pod the current policy selects must stay ``stable``, or it
  would run neither). :func:`~canarymesh.routing.config_split.choose_pods` picks the share, so
  widening keeps every pod already on the changed config.
* ``set_weights`` (share > 0) labels every affected pod ``stable`` first (no pod runs neither
  policy), writes the split objects, then labels the share ``canary``. Share 0 undoes it all:
  the share goes back to ``stable``, the user's objects are restored exactly, the
  ``<name>-config-canary`` objects deleted, the labels removed. A rollback is share 0.
* ``finalize`` with the canary subset (``"canary"``) promotes: the changed documents become
  the objects, then the ``-config-canary`` objects and the labels go.

The user's objects are rewritten by a replace at the resourceVersion read (a concurrent edit is
a Conflict, retried, never overwritten; a field the change drops is dropped, which server-side
apply cannot do to another manager's field). Each rewritten object keeps its pre-canary spec in
the annotation ``canarymesh.io/config-canary-original`` (``null``: the object did not exist),
with the Canary in ``…-of`` and the share in ``…-weight``; a restarted controller recomputes the
split from that saved spec, so an object is never split twice, and a rollback restores it to
the byte. The ``-config-canary`` objects are wholly the controller's (server-side apply). Do not
edit a config-canaried object until its Canary finished: the next step rewrites it from the
saved spec. One config canary per namespace at a time: the pods carry one label.

**Judging.** Prometheus copies pod labels onto the series it scrapes from the pod (Istio's addon,
``addons/prometheus.yaml``, job ``kubernetes-pods``: ``labelmap __meta_kubernetes_pod_label_(.+)``),
so the client sidecars' ``istio_requests_total{reporter="source"}`` carry
``canarymesh_io_config_canary="canary"`` or ``"stable"``: the canary's requests against the
stable's, to the same destination, in the same window. A relabelled pod starts a new series, so
judge with ``rate``/``increase`` (never raw counters) over windows that start after the step's
labels were verified.

``verify_weights`` checks the objects (split as computed, carrying the share) and the labels
(exactly the share ``canary``); a new pod (a restarted replica) found without a label is
labelled there and then, so no replica of a policy's workload runs neither policy for longer
than one look. With istiod configured it also asks ``/debug/syncz`` that every affected proxy
acknowledged its latest cluster, listener and route push (a NACKed config never verifies); it
cannot tell whether that push already held the new labels.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from canarymesh.api.canary import Canary
from canarymesh.errors import ConfigError
from canarymesh.mesh.model import labels_match, resolve_host
from canarymesh.rollout.actions import Weights
from canarymesh.routing.config_split import (
    CANARY,
    LABEL,
    STABLE,
    SUFFIX,
    Document,
    choose_pods,
    document_key,
    split_documents,
)
from canarymesh.runtime.kube.client import (
    AUTHORIZATION_POLICY,
    DESTINATION_RULE,
    VIRTUAL_SERVICE,
    KubeApi,
    ObjectKind,
)
from canarymesh.runtime.kube.verify import IstiodVerifier

__all__ = ["ORIGINAL", "OWNER", "WEIGHT", "KubeConfigRouter"]

ORIGINAL = "canarymesh.io/config-canary-original"
OWNER = "canarymesh.io/config-canary-of"
WEIGHT = "canarymesh.io/config-canary-weight"
OURS = (ORIGINAL, OWNER, WEIGHT)
KINDS = {
    "VirtualService": VIRTUAL_SERVICE,
    "DestinationRule": DESTINATION_RULE,
    "AuthorizationPolicy": AUTHORIZATION_POLICY,
}
Key = tuple[str, str, str]  # kind, namespace, name
PodKey = tuple[str, str]  # namespace, name
Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    labels: Mapping[str, str]
    gateway: bool


@dataclass
class Live:
    """The objects of a config canary as they are now, by the key of each changed document."""

    mains: dict[Key, Obj | None]
    splits: dict[Key, Obj | None]  # the ``<name>-config-canary`` object of each key
    originals: dict[Key, Document]  # the pre-canary documents (none: there was no object)

    def split(self) -> bool:
        return any(obj is not None for obj in self.splits.values()) or any(
            obj is not None and ORIGINAL in _annotations(obj) for obj in self.mains.values()
        )


class KubeConfigRouter:
    def __init__(
        self, api: KubeApi, namespace: str, name: str, verifier: IstiodVerifier | None = None
    ) -> None:
        self.api, self.namespace, self.name = api, namespace, name
        self.verifier = verifier
        self.key = f"{namespace}/{name}"

    def reconcile(self, canary: Canary, weights: Weights) -> None:
        changed = self._changed(canary)
        live = self._read(changed)
        split_documents(_current(live), changed)  # refuses what cannot be split, before any write
        if not self._wanted(canary, changed, live, self._pods(changed), 0):
            raise ConfigError(
                f"Canary {self.key}: no running meshed pod takes this config (no client of"
                f" {canary.target.host} in {self.namespace}, no pod the policy selects)"
            )
        self.set_weights(canary, weights)

    def set_weights(self, canary: Canary, weights: Weights) -> None:
        changed = self._changed(canary)
        live = self._read(changed)
        if weights.canary == 0:
            self._end(changed, live, promote=False)
            return
        split, _ = split_documents(_current(live), changed)
        pods = self._pods(changed)
        wanted = self._wanted(canary, changed, live, pods, weights.canary)
        # Labelled stable before any object selects on the label (see the module's docstring).
        self._label(pods, {k: STABLE for k in wanted if LABEL not in pods[k].labels})
        for doc in split:
            self._write(doc, live, weights.canary)
        self._relabel(pods, wanted)

    def get_weights(self, canary: Canary) -> Weights:
        changed = self._changed(canary)
        live = self._read(changed)
        for obj in (*live.mains.values(), *live.splits.values()):
            if obj is not None and _annotations(obj).get(OWNER) == self.key:
                weight = _annotations(obj).get(WEIGHT)
                if weight is not None:
                    return Weights(int(weight), canary.stable_subset())
        if not live.split() and _promoted(changed, live):
            return Weights(0, canary.canary_subset())
        return Weights(0, canary.stable_subset())

    def verify_weights(self, canary: Canary, weights: Weights) -> bool:
        """The objects hold the split (or none), exactly the share of pods is labelled canary
        and, with istiod configured, every affected proxy acknowledged its latest push."""
        changed = self._changed(canary)
        live = self._read(changed)
        pods = self._pods(changed)
        wanted = self._wanted(canary, changed, live, pods, weights.canary)
        if weights.canary == 0:
            if live.split() or any(LABEL in p.labels for p in pods.values()):
                return False
            if weights.stable_subset == canary.canary_subset() and not _promoted(changed, live):
                return False
        else:
            split, _ = split_documents(_current(live), changed)
            if not all(self._holds(doc, live, weights.canary) for doc in split):
                return False
            labels = {k: p.labels.get(LABEL) for k, p in pods.items() if LABEL in p.labels}
            if labels != wanted:
                if any(LABEL not in pods[k].labels for k in wanted):
                    self._relabel(pods, wanted)  # a new pod: label it now, not at the next step
                return False
        if self.verifier is None:
            return True
        return all(
            self.verifier.acknowledged(namespace, [n for ns, n in wanted if ns == namespace])
            for namespace in {ns for ns, _ in wanted}
        )

    def finalize(self, canary: Canary, stable_subset: str) -> None:
        changed = self._changed(canary)
        self._end(changed, self._read(changed), promote=stable_subset == canary.canary_subset())

    # --- reading -----------------------------------------------------------------------------

    def _changed(self, canary: Canary) -> list[Document]:
        if canary.config is None:
            raise ConfigError(f"Canary {self.key}: not a config canary (no spec.config)")
        found = []
        for resource in canary.config.resources:
            doc: Document = copy.deepcopy(dict(resource))
            meta = dict(doc.get("metadata") or {})
            meta.setdefault("namespace", self.namespace)
            doc["metadata"] = meta
            if doc.get("kind") not in KINDS or not meta.get("name"):
                raise ConfigError(
                    f"Canary {self.key}: spec.config.resources: {doc.get('kind')}"
                    f" {meta.get('name')}: a config canary changes {', '.join(KINDS)} only"
                )
            found.append(doc)
        return found

    def _read(self, changed: Sequence[Document]) -> Live:
        live = Live({}, {}, {})
        for doc in changed:
            key = document_key(doc)
            kind = KINDS[key[0]]
            main = self.api.find(kind, key[1], key[2])
            other = self.api.find(kind, key[1], key[2] + SUFFIX)
            for obj, ours in ((main, False), (other, True)):
                owner = _annotations(obj).get(OWNER) if obj is not None else None
                if obj is not None and owner != self.key and (ours or owner is not None):
                    raise ConfigError(
                        f"Canary {self.key}: {key[0]} {key[1]}/{obj['metadata']['name']} belongs"
                        f" to {f'the config canary {owner}' if owner else 'someone else'}; one"
                        " config canary per object at a time"
                    )
            live.mains[key], live.splits[key] = main, other
            spec = _spec(main) if main is not None else None
            if main is not None and ORIGINAL in _annotations(main):
                spec = _saved(key, _annotations(main)[ORIGINAL])
            if spec is not None:
                meta = {"name": key[2], "namespace": key[1]}
                live.originals[key] = {"kind": key[0], "metadata": meta, "spec": spec}
        return live

    def _pods(self, changed: Sequence[Document]) -> dict[PodKey, Pod]:
        """The running meshed pods of the namespaces the change touches."""
        namespaces = {self.namespace} | {document_key(d)[1] for d in changed}
        pods: dict[PodKey, Pod] = {}
        for namespace in sorted(namespaces):
            for obj in self.api.list_pods(namespace):
                pod = _meshed_pod(obj, namespace)
                if pod is not None:
                    pods[(namespace, pod.name)] = pod
        return pods

    def _wanted(
        self,
        canary: Canary,
        changed: Sequence[Document],
        live: Live,
        pods: Mapping[PodKey, Pod],
        percent: int,
    ) -> dict[PodKey, str]:
        """The label each affected pod carries at ``percent`` (as the local mesh labels)."""
        wanted: dict[PodKey, str] = {}
        if any(d["kind"] != "AuthorizationPolicy" for d in changed):
            clients = self._clients(canary, pods)
            chosen = set(choose_pods(clients, percent, self.key))
            wanted.update({(self.namespace, n): _side(n in chosen) for n in clients})
        for policy in (d for d in changed if d["kind"] == "AuthorizationPolicy"):
            key = document_key(policy)
            selected = _selected(policy, key[1], pods)
            chosen = set(choose_pods(selected, percent, self.key))
            current = live.originals.get(key)
            kept = _selected(current, key[1], pods) if current is not None else []
            wanted.update({(key[1], n): _side(n in chosen) for n in {*selected, *kept}})
        return wanted

    def _clients(self, canary: Canary, pods: Mapping[PodKey, Pod]) -> list[str]:
        host = resolve_host(canary.target.host, self.namespace)
        parts = host.split(".")
        selector = None
        if host.endswith(".svc.cluster.local") and parts[1] == self.namespace:
            selector = self.api.service_selector(self.namespace, parts[0])
        return sorted(
            pod.name
            for (namespace, _), pod in pods.items()
            if namespace == self.namespace
            and not pod.gateway
            and not (selector and labels_match(selector, pod.labels))
        )

    def _holds(self, doc: Document, live: Live, weight: int) -> bool:
        key = document_key(doc)
        base = (key[0], key[1], key[2].removesuffix(SUFFIX))
        obj = (live.splits if key[2].endswith(SUFFIX) else live.mains).get(base)
        if obj is None:
            return False
        if not key[2].endswith(SUFFIX) and ORIGINAL not in _annotations(obj):
            return _spec(obj) == _spec(doc)  # kept as it is (a DestinationRule's current one)
        notes = _annotations(obj)
        return _spec(obj) == _spec(doc) and notes.get(WEIGHT) == str(weight)

    # --- writing -----------------------------------------------------------------------------

    def _write(self, doc: Document, live: Live, weight: int) -> None:
        if self._holds(doc, live, weight):
            return
        key = document_key(doc)
        kind, main = KINDS[key[0]], live.mains.get(key)
        notes = {OWNER: self.key, WEIGHT: str(weight)}
        if key[2].endswith(SUFFIX):
            self.api.apply(kind, _body(kind, key, _spec(doc), notes))
            return
        original = live.originals.get(key)
        notes[ORIGINAL] = json.dumps(None if original is None else original["spec"])
        if main is None:
            self.api.apply(kind, _body(kind, key, _spec(doc), notes))
        else:
            self.api.replace(kind, _rewritten(main, _spec(doc), notes))

    def _end(self, changed: Sequence[Document], live: Live, *, promote: bool) -> None:
        """Promote the changed documents, or restore the current ones; then drop the split."""
        pods = self._pods(changed)
        if not promote:  # the canary's share back on the current config before it changes
            self._label(pods, {k: STABLE for k, p in pods.items() if p.labels.get(LABEL) == CANARY})
        for doc in changed:
            key = document_key(doc)
            kind, main = KINDS[key[0]], live.mains.get(key)
            if promote:
                if main is None:
                    self.api.apply(kind, _body(kind, key, _spec(doc), {}, doc))
                elif _spec(main) != _spec(doc) or any(k in _annotations(main) for k in OURS):
                    self.api.replace(kind, _rewritten(main, _spec(doc), {}, doc))
            elif main is not None and ORIGINAL in _annotations(main):
                original = live.originals.get(key)
                if original is None:
                    self.api.delete(kind, key[1], key[2])  # the canary created it
                else:
                    self.api.replace(kind, _rewritten(main, _spec(original), {}))
            if live.splits.get(key) is not None:
                self.api.delete(kind, key[1], key[2] + SUFFIX)
        self._label(pods, {k: None for k, p in pods.items() if LABEL in p.labels})

    def _relabel(self, pods: dict[PodKey, Pod], wanted: Mapping[PodKey, str]) -> None:
        """Exactly the pods of ``wanted`` labelled, as it says."""
        extra = {k: None for k, p in pods.items() if LABEL in p.labels and k not in wanted}
        self._label(pods, {**wanted, **extra})

    def _label(self, pods: dict[PodKey, Pod], labels: Mapping[PodKey, str | None]) -> None:
        """Set (None: remove) the label of each pod, keeping ``pods`` up to date."""
        for (namespace, name), value in sorted(labels.items()):
            pod = pods.get((namespace, name))
            if pod is None or pod.labels.get(LABEL) == value:
                continue
            self.api.label_pod(namespace, name, {LABEL: value})
            kept = {k: v for k, v in pod.labels.items() if k != LABEL}
            pods[(namespace, name)] = Pod(
                namespace, name, kept if value is None else {**kept, LABEL: value}, pod.gateway
            )


# --- pure helpers ------------------------------------------------------------------------------


def _side(chosen: bool) -> str:
    return CANARY if chosen else STABLE


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _spec(obj: Mapping[str, Any]) -> Obj:
    return dict(obj.get("spec") or {})


def _current(live: Live) -> dict[Key, Document]:
    return dict(live.originals)


def _saved(key: Key, text: str) -> Obj | None:
    """The pre-canary spec an object carries (None: the object did not exist)."""
    try:
        saved = json.loads(text)
    except ValueError:
        saved = ""
    if saved is not None and not isinstance(saved, dict):
        raise ConfigError(
            f"{key[0]} {key[1]}/{key[2]}: the annotation {ORIGINAL} is not a saved spec;"
            " restore the object by hand and remove the annotation"
        )
    return saved


def _promoted(changed: Iterable[Document], live: Live) -> bool:
    """Every changed document is its object now, with nothing of the canary left on it."""
    for doc in changed:
        main = live.mains.get(document_key(doc))
        if main is None or _spec(main) != _spec(doc):
            return False
        if any(k in _annotations(main) for k in OURS):
            return False
    return True


def _selected(policy: Mapping[str, Any], namespace: str, pods: Mapping[PodKey, Pod]) -> list[str]:
    selector = ((policy.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = {k: v for k, v in selector.items() if k != LABEL}
    return sorted(
        pod.name
        for (ns, _), pod in pods.items()
        if ns == namespace and labels_match(selector, pod.labels)
    )


def _meshed_pod(obj: Mapping[str, Any], namespace: str) -> Pod | None:
    """The pod, when it runs and has a sidecar (or is a gateway); None otherwise."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    if (obj.get("status") or {}).get("phase") != "Running" or meta.get("deletionTimestamp"):
        return None
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
    proxy = next((c for c in containers if c.get("name") == "istio-proxy"), None)
    injected = "sidecar.istio.io/status" in (meta.get("annotations") or {})
    if proxy is None and not injected:
        return None
    gateway = proxy is not None and "router" in (proxy.get("args") or [])
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return Pod(namespace, str(meta.get("name")), labels, gateway)


def _body(
    kind: ObjectKind, key: Key, spec: Obj, notes: Mapping[str, str], doc: Document | None = None
) -> Obj:
    meta: Obj = {"name": key[2], "namespace": key[1]}
    source = (doc or {}).get("metadata") or {}
    if source.get("labels"):
        meta["labels"] = dict(source["labels"])
    annotations = {**(source.get("annotations") or {}), **notes}
    if annotations:
        meta["annotations"] = annotations
    return {
        "apiVersion": f"{kind.group}/{kind.version}",
        "kind": key[0],
        "metadata": meta,
        "spec": spec,
    }


def _rewritten(
    live: Mapping[str, Any], spec: Obj, notes: Mapping[str, str], doc: Document | None = None
) -> Obj:
    """``live`` (at its resourceVersion) with ``spec``, our annotations set to ``notes``, and a
    promoted document's labels and annotations."""
    out = copy.deepcopy(dict(live))
    out["spec"] = copy.deepcopy(spec)
    meta = out.setdefault("metadata", {})
    source = (doc or {}).get("metadata") or {}
    labels = {**(meta.get("labels") or {}), **(source.get("labels") or {})}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in OURS}
    annotations.update({**(source.get("annotations") or {}), **notes})
    for field, value in (("labels", labels), ("annotations", annotations)):
        if value:
            meta[field] = value
        else:
            meta.pop(field, None)
    return out
