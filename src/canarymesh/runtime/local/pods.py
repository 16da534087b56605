"""Deployments as local pods: names like kubectl's, each container's program and environment.

Called by :mod:`canarymesh.runtime.local.reconcile` on every change. :func:`plan_pods` (pure)
turns the applied Deployments into one :class:`PodPlan` per replica: what the app container runs
(a catalog image's recipe, or the container's own ``command``/``args`` as Kubernetes reads them,
``$(VAR)`` expanded), its environment (``envFrom`` then ``env``, Secrets and ConfigMaps
resolved), working directory, user, ports and probes. An image the catalog does not know and
that has no ``command`` is refused here, at apply, naming the Deployment and container.

A pod is named ``<deployment>-<template hash>-<5 chars>``: both parts are derived from the pod
template (and the replica index), so re-applying the same Deployment keeps its pods, while a
changed template replaces them, as a Kubernetes rollout does. Pods are keyed by namespace and
name everywhere (:attr:`PodPlan.proxy_id` is ``<name>.<namespace>``, Istio's proxy name).

:func:`app_env` adds what the mesh itself gives the app. In a pod network that is only the
pod's name: the app dials ``details:9080`` and the sidecar captures it. On the shared network
(the fallback without namespaces) ``HTTP_PROXY`` points at the sidecar's outbound listener and
``MYSQL_DB_HOST``/``MYSQL_DB_PORT`` at the sidecar's local port for that TCP service.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from canarymesh.api import kube
from canarymesh.api.objects import Resource
from canarymesh.errors import ConfigError
from canarymesh.mesh.model import ProxyNode, resolve_host
from canarymesh.runtime.local.catalog import (
    PythonService,
    Recipe,
    catalog_recipe,
    unknown_image_message,
)

__all__ = ["PodPlan", "app_base_env", "app_env", "expand", "plan_pods", "pod_name", "proxy_id"]

# Kubernetes' alphabet for generated names: no vowels (no words), no look-alike characters.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The TCP endpoints an app is told through its environment: (host var, port var, default port).
_TCP_ENV = (("MYSQL_DB_HOST", "MYSQL_DB_PORT", 3306),)
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


@dataclass(frozen=True, slots=True)
class PodPlan:
    """One replica of a Deployment and its app container, as the local mesh runs it."""

    name: str
    # build_mesh's replica id (``reviews-v1-0``, or ``reviews-v1-0.<namespace>``).
    replica_id: str
    deployment: str
    namespace: str
    container: str
    # A catalog image's local program, or None: run ``command`` + ``args``.
    recipe: Recipe | None
    env: tuple[tuple[str, str], ...]
    container_port: int | None
    command: tuple[str, ...] = ()
    working_dir: str | None = None
    # (uid, gid) from securityContext; None: the container's default, root.
    run_as: tuple[int, int] | None = None
    readiness: kube.Probe | None = None
    liveness: kube.Probe | None = None
    ports: tuple[int, ...] = ()
    port_names: tuple[tuple[str, int], ...] = ()

    @property
    def proxy_id(self) -> str:
        return proxy_id(self.name, self.namespace)

    @property
    def readiness_path(self) -> str | None:
        probe = self.readiness
        if probe is None or probe.http_get is None:
            return None
        return str(probe.http_get.get("path") or "/")


def proxy_id(name: str, namespace: str) -> str:
    """How the local mesh names a pod's proxy everywhere (Istio's ``<pod>.<namespace>``)."""
    return f"{name}.{namespace}"


def _encode(digest: bytes, length: int) -> str:
    number = int.from_bytes(digest, "big")
    chars = []
    for _ in range(length):
        number, rest = divmod(number, len(_ALPHABET))
        chars.append(_ALPHABET[rest])
    return "".join(chars)


def pod_name(deployment: str, template: kube.PodTemplateSpec, replica: int) -> str:
    """``reviews-v1-<10 chars>-<5 chars>``, stable for the same template and replica."""
    canonical = json.dumps(template.model_dump(mode="json"), sort_keys=True).encode()
    template_hash = _encode(hashlib.sha256(canonical).digest(), 10)
    suffix = _encode(hashlib.sha256(f"{template_hash}/{replica}".encode()).digest(), 5)
    return f"{deployment}-{template_hash}-{suffix}"


def replica_id(deployment: str, namespace: str, replica: int) -> str:
    """build_mesh's proxy id of a replica (mesh.build.sidecar_proxies spells it the same)."""
    base = f"{deployment}-{replica}"
    return base if namespace == "default" else f"{base}.{namespace}"


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known variables are replaced, unknown references are
    kept as written, and ``$$`` is a literal ``$`` (so ``$$(VAR)`` stays ``$(VAR)``)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _VAR.sub(replace, text)


def plan_pods(resources: Sequence[Resource[BaseModel]]) -> list[PodPlan]:
    """Every replica of every Deployment; ConfigError for what cannot run (naming the field)."""
    data = _key_data(resources)
    plans = []
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, kube.Deployment):
            continue
        namespace = resource.namespace_or("default")
        where = f"deployment {namespace}/{resource.name}"
        containers = spec.template.spec.containers
        if not containers:
            raise ConfigError(f"{where} has no containers (spec.template.spec.containers)")
        container = containers[0]
        recipe = catalog_recipe(container.image or "")
        env = _container_env(container, namespace, data, where)
        command: tuple[str, ...] = ()
        if container.command:
            values = dict(env)
            command = tuple(expand(part, values) for part in (*container.command, *container.args))
        elif recipe is None:
            raise ConfigError(
                f"{where} container {container.name!r}:"
                f" {unknown_image_message(container.image or '')}; or give the container a"
                " `command:` (and `args:`) to run a local program as it"
            )
        working_dir = container.working_dir
        if working_dir is not None and not working_dir.startswith("/"):
            raise ConfigError(
                f"{where} container {container.name!r}: workingDir {working_dir!r} must be an"
                " absolute path"
            )
        ports = tuple(p.container_port for p in container.ports)
        port_names = tuple((p.name, p.container_port) for p in container.ports if p.name)
        for replica in range(spec.replica_count):
            plans.append(
                PodPlan(
                    pod_name(resource.name, spec.template, replica),
                    replica_id(resource.name, namespace, replica),
                    resource.name,
                    namespace,
                    container.name,
                    recipe,
                    env,
                    ports[0] if ports else None,
                    command,
                    working_dir,
                    _run_as(container, spec.template.spec, where, recipe),
                    container.readiness_probe,
                    container.liveness_probe,
                    ports,
                    port_names,
                )
            )
    return sorted(plans, key=lambda p: (p.namespace, p.name))


def _run_as(
    container: kube.Container, pod: kube.PodSpec, where: str, recipe: Recipe | None
) -> tuple[int, int] | None:
    contexts = [c for c in (container.security_context, pod.security_context) if c is not None]
    uid = next((c.run_as_user for c in contexts if c.run_as_user is not None), None)
    gid = next((c.run_as_group for c in contexts if c.run_as_group is not None), None)
    non_root = next((c.run_as_non_root for c in contexts if c.run_as_non_root is not None), None)
    if non_root and uid is None and isinstance(recipe, PythonService) and not container.command:
        uid = recipe.user  # the image's own user, as the kubelet would find it
    if non_root and not uid:
        raise ConfigError(
            f"{where} container {container.name!r}: securityContext.runAsNonRoot needs a"
            " runAsUser other than 0 on the local mesh (there is no image user to read)"
        )
    if uid is None:
        return None
    if uid == 1337:
        # Istio's proxy user: its traffic bypasses the capture, so the sidecar would be skipped.
        raise ConfigError(
            f"{where} container {container.name!r}: runAsUser 1337 is the sidecar's user;"
            " choose another"
        )
    return uid, gid if gid is not None else uid


# (kind, namespace, name) -> decoded key/value data of Secrets and ConfigMaps.
KeyData = dict[tuple[str, str, str], dict[str, str]]


def _key_data(resources: Sequence[Resource[BaseModel]]) -> KeyData:
    found: KeyData = {}
    for resource in resources:
        spec = resource.spec
        key = (resource.kind, resource.namespace_or("default"), resource.name)
        if isinstance(spec, kube.Secret):
            found[key] = {k: _b64(v) for k, v in spec.data.items()} | dict(spec.string_data)
        elif isinstance(spec, kube.ConfigMap):
            found[key] = dict(spec.data)
    return found


def _b64(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ConfigError(f"secret data {value[:20]!r}... is not base64 text") from None


def _container_env(
    container: kube.Container, namespace: str, data: KeyData, where: str
) -> tuple[tuple[str, str], ...]:
    """``envFrom`` first, then ``env`` (which wins), each value ``$(VAR)``-expanded against the
    variables defined before it, as the kubelet does."""
    env: dict[str, str] = {}
    for source in container.env_from:
        for field, kind, ref in (
            ("configMapRef", "ConfigMap", source.config_map_ref),
            ("secretRef", "Secret", source.secret_ref),
        ):
            if ref is None:
                continue
            values = data.get((kind, namespace, ref.name))
            if values is None:
                if ref.optional:
                    continue
                raise ConfigError(
                    f"{where} container {container.name!r}: envFrom {field} needs {kind}"
                    f" {namespace}/{ref.name}, which is not applied; apply it first"
                )
            for key, value in sorted(values.items()):
                env[(source.prefix or "") + key] = value
    for var in container.env:
        env[var.name] = expand(_env_value(var, namespace, data, where), env)
    return tuple(env.items())


def _env_value(var: kube.EnvVar, namespace: str, data: KeyData, where: str) -> str:
    if var.value_from is None:
        return var.value or ""
    for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        ref = var.value_from.get(field)
        if isinstance(ref, dict):
            name, key = str(ref.get("name")), str(ref.get("key"))
            value = data.get((kind, namespace, name), {}).get(key)
            if value is None:
                if ref.get("optional") is True:
                    return ""
                raise ConfigError(
                    f"{where}: env {var.name} needs key {key!r} of"
                    f" {kind} {namespace}/{name}, which is not applied; apply it first"
                )
            return value
    raise ConfigError(
        f"{where}: env {var.name}: only secretKeyRef and configMapKeyRef are supported on the"
        " local mesh"
    )


def app_base_env() -> dict[str, str]:
    """What every app inherits from the control plane: where programs are (PATH) and, as a
    container runtime sets it, HOME."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/root"),
    }


def app_env(plan: PodPlan, proxy: ProxyNode, base_env: Mapping[str, str]) -> dict[str, str]:
    """The app's environment: image env, then the Deployment's, then the mesh's own variables."""
    image_env = dict(plan.recipe.env) if isinstance(plan.recipe, PythonService) else {}
    env = {**base_env, **image_env, **dict(plan.env)}
    env.update(HOSTNAME=plan.name, PYTHONUNBUFFERED="1")
    if proxy.network is not None:
        return env  # the pod's own network: names resolve and the sidecar captures
    outbound = f"http://127.0.0.1:{proxy.ports.outbound_http}"
    env.update(
        HTTP_PROXY=outbound,
        http_proxy=outbound,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    for host_var, port_var, default in _TCP_ENV:
        if host_var not in env:
            continue
        hostname = resolve_host(env[host_var], plan.namespace)
        port = int(env.get(port_var) or default)
        local = proxy.ports.tcp_port(hostname, port)
        if local is None:
            raise ConfigError(
                f"pod {plan.name}: {host_var}={env[host_var]} port {port} is not a TCP service"
                " of the mesh; apply its Service (with a tcp- or mysql- port name) first"
            )
        env[host_var], env[port_var] = "127.0.0.1", str(local)
    return env
