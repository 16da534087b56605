"""The few Kubernetes API calls the cluster runtime makes, over the official ``kubernetes``
client, with its errors mapped onto :mod:`canarymesh.errors`. Shell; used by the router, the
store, the lease and the CLI backend of this package.

Every write is a server-side apply with the field manager ``canarymesh-controller``
(``force``: the controller owns the fields it writes; see :mod:`.patches` for which), except
the Lease (optimistic concurrency by resourceVersion is the point there), Events (create),
consuming a manual command (a JSON patch guarded by a ``test`` op, so it is taken once), a
config canary's rewrite of the user's own objects (a replace at the resourceVersion read, so a
concurrent edit is never overwritten and a field may be dropped exactly), and pod labels (a
merge patch, as ``kubectl label`` does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from canarymesh.api.canary import API_GROUP
from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.runtime.kube.crd import PLURAL, VERSION
from canarymesh.runtime.kube.patches import FIELD_MANAGER

__all__ = [
    "APPLY",
    "AUTHORIZATION_POLICY",
    "COMMAND_ANNOTATION",
    "KubeApi",
    "NotFound",
    "ObjectKind",
    "api_client",
]

APPLY = "application/apply-patch+yaml"
COMMAND_ANNOTATION = "canarymesh.io/command"


class NotFound(ConfigError):
    """The object does not exist (a Canary naming a VirtualService that is not there)."""


class Conflict(TemporaryError):
    """Someone else changed the object first (a Lease taken by another replica)."""


@dataclass(frozen=True, slots=True)
class ObjectKind:
    group: str
    version: str
    plural: str


CANARY = ObjectKind(API_GROUP, VERSION, PLURAL)
VIRTUAL_SERVICE = ObjectKind("networking.istio.io", "v1", "virtualservices")
DESTINATION_RULE = ObjectKind("networking.istio.io", "v1", "destinationrules")
HTTP_ROUTE = ObjectKind("gateway.networking.k8s.io", "v1", "httproutes")
AUTHORIZATION_POLICY = ObjectKind("security.istio.io", "v1", "authorizationpolicies")


def api_client(
    context: str | None = None, *, in_cluster: bool = False, kubeconfig: str | None = None
) -> client.ApiClient:
    """An ApiClient for a kubeconfig context (``--context``), or the Pod's service account.

    ``kubeconfig`` defaults to ``$KUBECONFIG`` as it is when called (the client library reads
    it once at import), then ``~/.kube/config``, as kubectl does."""
    try:
        if in_cluster:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
            return client.ApiClient()
        configuration = client.Configuration()
        kubeconfig = kubeconfig or os.environ.get("KUBECONFIG") or None
        if kubeconfig is None:
            kubeconfig = os.path.expanduser("~/.kube/config")
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    except config.ConfigException as err:
        raise ConfigError(f"cannot use the Kubernetes config: {err}") from err
    return client.ApiClient(configuration)


def _mapped(err: Exception, what: str) -> Exception:
    if isinstance(err, ApiException):
        if err.status == 404:
            return NotFound(f"{what}: not found")
        if err.status == 409:
            return Conflict(f"{what}: conflict: {err.reason}", delay=1.0)
        if err.status in (400, 403, 422):
            return ConfigError(f"{what}: refused ({err.status} {err.reason}): {err.body}")
        return TemporaryError(f"{what}: API server answered {err.status} {err.reason}", delay=2.0)
    return TemporaryError(f"{what}: API server unreachable: {err!r}", delay=2.0)


class KubeApi:
    """Typed access to the objects Canary Mesh reads and writes."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.events = client.EventsV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.core = client.CoreV1Api(api)

    def get(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any]:
        what = f"{kind.plural}.{kind.group} {namespace}/{name}"
        try:
            found = self.custom.get_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name
            )
        except (ApiException, HTTPError) as err:
            raise _mapped(err, what) from err
        return cast(dict[str, Any], found)

    def find(self, kind: ObjectKind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(kind, namespace, name)
        except NotFound:
            return None

    def replace(self, kind: ObjectKind, body: Mapping[str, Any]) -> None:
        """Replace the object with ``body`` at the resourceVersion ``body`` carries (Conflict
        when someone changed it since it was read)."""
        meta = body["metadata"]
        what = f"replace {kind.plural}.{kind.group} {meta['namespace']}/{meta['name']}"
        try:
            self.custom.replace_namespaced_custom_object(
                kind.group, kind.version, meta["namespace"], kind.plural, meta["name"],
                dict(body), field_manager=FIELD_MANAGER,
            )  # fmt: skip
        except (ApiException, HTTPError) as err:
            raise _mapped(err, what) from err

    def delete(self, kind: ObjectKind, namespace: str, name: str) -> bool:
        """Delete the object; False when it was not there."""
        what = f"delete {kind.plural}.{kind.group} {namespace}/{name}"
        try:
            self.custom.delete_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, name
            )
        except ApiException as err:
            if err.status == 404:
                return False
            raise _mapped(err, what) from err
        except HTTPError as err:
            raise _mapped(err, what) from err
        return True

    def list_pods(self, namespace: str) -> list[dict[str, Any]]:
        """The pods of ``namespace`` as the API server's JSON (camelCase, as kubectl shows)."""
        try:
            response = self.core.list_namespaced_pod(namespace, _preload_content=False)
        except (ApiException, HTTPError) as err:
            raise _mapped(err, f"list pods in {namespace}") from err
        # _preload_content=False: the raw answer, not models
        return list(json.loads(cast(Any, response).data).get("items") or [])

    def label_pod(self, namespace: str, name: str, labels: Mapping[str, str | None]) -> None:
        """Set (None: remove) labels of a pod by a merge patch."""
        body = {"metadata": {"labels": dict(labels)}}
        try:
            self.core.patch_namespaced_pod(
                name, namespace, body, _content_type="application/merge-patch+json"
            )
        except (ApiException, HTTPError) as err:
            raise _mapped(err, f"label pod {namespace}/{name}") from err

    def service_selector(self, namespace: str, name: str) -> dict[str, str] | None:
        """The label selector of a Service; None when there is no such Service."""
        try:
            response = self.core.read_namespaced_service(name, namespace, _preload_content=False)
        except ApiException as err:
            if err.status == 404:
                return None
            raise _mapped(err, f"service {namespace}/{name}") from err
        except HTTPError as err:
            raise _mapped(err, f"service {namespace}/{name}") from err
        spec = json.loads(cast(Any, response).data).get("spec") or {}
        return {str(k): str(v) for k, v in (spec.get("selector") or {}).items()}

    def list_objects(self, kind: ObjectKind, namespace: str) -> list[dict[str, Any]]:
        try:
            found = self.custom.list_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural
            )
        except (ApiException, HTTPError) as err:
            raise _mapped(err, f"list {kind.plural}.{kind.group} in {namespace}") from err
        return list(cast(dict[str, Any], found).get("items", []))

    def list_canaries(self, namespace: str | None = None) -> list[dict[str, Any]]:
        try:
            if namespace is None:
                found = self.custom.list_cluster_custom_object(API_GROUP, VERSION, PLURAL)
            else:
                found = self.custom.list_namespaced_custom_object(
                    API_GROUP, VERSION, namespace, PLURAL
                )
        except (ApiException, HTTPError) as err:
            raise _mapped(err, f"list {PLURAL}.{API_GROUP}") from err
        return list(cast(dict[str, Any], found).get("items", []))

    def apply(
        self,
        kind: ObjectKind,
        body: Mapping[str, Any],
        *,
        status: bool = False,
        manager: str = FIELD_MANAGER,
    ) -> None:
        """Server-side apply of ``body`` (or of its status) as ``manager``."""
        meta = body["metadata"]
        what = f"apply {kind.plural}.{kind.group} {meta['namespace']}/{meta['name']}"
        patch = (
            self.custom.patch_namespaced_custom_object_status
            if status
            else self.custom.patch_namespaced_custom_object
        )
        try:
            patch(
                kind.group,
                kind.version,
                meta["namespace"],
                kind.plural,
                meta["name"],
                dict(body),
                field_manager=manager,
                force=True,
                _content_type=APPLY,
            )
        except (ApiException, HTTPError) as err:
            raise _mapped(err, what) from err

    def take_annotation(self, namespace: str, name: str, key: str, value: str) -> bool:
        """Remove annotation ``key`` if it still holds ``value``; False if it changed."""
        pointer = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
        ops = [{"op": "test", "path": pointer, "value": value}, {"op": "remove", "path": pointer}]
        try:
            self.custom.patch_namespaced_custom_object(
                API_GROUP, VERSION, namespace, PLURAL, name, ops,
                _content_type="application/json-patch+json",
            )  # fmt: skip
        except ApiException as err:
            if err.status in (409, 422):  # the test op failed: someone changed it
                return False
            raise _mapped(err, f"take {key} of {namespace}/{name}") from err
        except HTTPError as err:
            raise _mapped(err, f"take {key} of {namespace}/{name}") from err
        return True

    def annotate(self, namespace: str, name: str, annotations: Mapping[str, str]) -> None:
        """Set annotations by a merge patch (the CLI's commands; a user action, not the
        controller's, so no field manager claims them)."""
        body = {"metadata": {"annotations": dict(annotations)}}
        try:
            self.custom.patch_namespaced_custom_object(
                API_GROUP, VERSION, namespace, PLURAL, name, body,
                _content_type="application/merge-patch+json",
            )  # fmt: skip
        except (ApiException, HTTPError) as err:
            raise _mapped(err, f"annotate canary {namespace}/{name}") from err

    def create_event(self, body: Mapping[str, Any]) -> None:
        namespace = body["metadata"]["namespace"]
        try:
            event = client.EventsV1Event.from_dict(dict(body))
            if event is None:
                raise ConfigError(f"not an Event: {body}")
            self.events.create_namespaced_event(namespace, event)
        except ApiException as err:
            if err.status == 409:  # the same decision saved twice: its Event exists already
                return
            raise _mapped(err, f"create event in {namespace}") from err
        except HTTPError as err:
            raise _mapped(err, f"create event in {namespace}") from err

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found = self.coordination.read_namespaced_lease(name, namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise _mapped(err, f"lease {namespace}/{name}") from err
        except HTTPError as err:
            raise _mapped(err, f"lease {namespace}/{name}") from err
        plain = self.api.sanitize_for_serialization(found)  # type: ignore[no-untyped-call]
        return cast(dict[str, Any], plain)

    def write_lease(self, namespace: str, body: Mapping[str, Any], *, create: bool) -> None:
        """Create the Lease, or replace it at the resourceVersion read (409 if it moved)."""
        name = body["metadata"]["name"]
        try:
            lease = client.V1Lease.from_dict(dict(body))
            if lease is None:
                raise ConfigError(f"not a Lease: {body}")
            if create:
                self.coordination.create_namespaced_lease(namespace, lease)
            else:
                self.coordination.replace_namespaced_lease(name, namespace, lease)
        except (ApiException, HTTPError) as err:
            raise _mapped(err, f"lease {namespace}/{name}") from err
