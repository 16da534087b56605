"""Deployments as local pods: names like kubectl's, the app's environment, and its process spec.

Called by :mod:`canarymesh.runtime.local.reconcile` on every change. :func:`plan_pods` (pure)
turns the applied Deployments into one :class:`PodPlan` per replica; :func:`app_spec` turns a plan
plus the ports ``build_mesh`` allocated to its sidecar into the supervised process.

A pod is named ``<deployment>-<template hash>-<5 chars>``: both parts are derived from the pod
template (and the replica index), so re-applying the same Deployment keeps its pods, while a
changed template replaces them, as a Kubernetes rollout does.

How an app reaches the mesh without iptables: ``HTTP_PROXY`` points at its own sidecar's outbound
listener, so every HTTP call is routed by the caller's sidecar. TCP services have no proxy
protocol, so ``MYSQL_DB_HOST``/``MYSQL_DB_PORT`` are rewritten to ``127.0.0.1`` and the local port
of the sidecar's outbound TCP listener for that service and port (the one ``build_mesh``
allocated); the app then reaches MySQL through its sidecar, as on a cluster.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from canarymesh.api import kube
from canarymesh.api.objects import Resource
from canarymesh.errors import ConfigError
from canarymesh.mesh.model import ProxyNode, resolve_host
from canarymesh.runtime.local.catalog import (
    MariaDbRecipe,
    PythonService,
    Recipe,
    resolve_image,
)
from canarymesh.runtime.local.supervisor import HttpProbe, ProcessSpec, TcpProbe

__all__ = ["PodPlan", "app_spec", "plan_pods", "pod_name"]

# Kubernetes' alphabet for generated names: no vowels (no words), no look-alike characters.
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# The TCP endpoints an app is told through its environment: (host var, port var, default port).
_TCP_ENV = (("MYSQL_DB_HOST", "MYSQL_DB_PORT", 3306),)


@dataclass(frozen=True, slots=True)
class PodPlan:
    """One replica of a Deployment: its pod name, build_mesh's proxy id, and its app container."""

    name: str
    proxy_id: str
    deployment: str
    namespace: str
    container: str
    recipe: Recipe
    env: tuple[tuple[str, str], ...]
    container_port: int | None
    readiness_path: str | None


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


def plan_pods(resources: Sequence[Resource[BaseModel]]) -> list[PodPlan]:
    """Every replica of every Deployment; ConfigError for an unknown image or a missing secret."""
    data = _key_data(resources)
    plans = []
    for resource in resources:
        spec = resource.spec
        if not isinstance(spec, kube.Deployment):
            continue
        namespace = resource.namespace_or("default")
        containers = spec.template.spec.containers
        if not containers:
            raise ConfigError(f"deployment {namespace}/{resource.name} has no containers")
        container = containers[0]
        recipe = resolve_image(container.image or "")
        env = tuple(
            (var.name, _env_value(var, namespace, data, resource.name)) for var in container.env
        )
        port = container.ports[0].container_port if container.ports else None
        for replica in range(spec.replica_count):
            plans.append(
                PodPlan(
                    pod_name(resource.name, spec.template, replica),
                    f"{resource.name}-{replica}",
                    resource.name,
                    namespace,
                    container.name,
                    recipe,
                    env,
                    port,
                    _readiness_path(container),
                )
            )
    return sorted(plans, key=lambda p: (p.namespace, p.name))


def _readiness_path(container: kube.Container) -> str | None:
    probe = container.readiness_probe
    if probe is None or probe.http_get is None:
        return None
    return str(probe.http_get.get("path") or "/")


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


def _env_value(var: kube.EnvVar, namespace: str, data: KeyData, deployment: str) -> str:
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
                    f"deployment {namespace}/{deployment}: env {var.name} needs key {key!r} of"
                    f" {kind} {namespace}/{name}, which is not applied; apply it first"
                )
            return value
    raise ConfigError(
        f"deployment {namespace}/{deployment}: env {var.name}: only secretKeyRef and"
        " configMapKeyRef are supported on the local mesh"
    )


def app_env(plan: PodPlan, proxy: ProxyNode, base_env: Mapping[str, str]) -> dict[str, str]:
    """The app's environment: image env, then the Deployment's, then the mesh's own variables."""
    image_env = dict(plan.recipe.env) if isinstance(plan.recipe, PythonService) else {}
    env = {**base_env, **image_env, **dict(plan.env)}
    outbound = f"http://127.0.0.1:{proxy.ports.outbound_http}"
    env.update(
        HOSTNAME=plan.name,
        HTTP_PROXY=outbound,
        http_proxy=outbound,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        PYTHONUNBUFFERED="1",
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


def app_spec(
    plan: PodPlan,
    proxy: ProxyNode,
    log_dir: Path,
    base_env: Mapping[str, str],
    backoff: float,
) -> ProcessSpec:
    """The app container of ``plan`` as a supervised process on its local port."""
    if plan.container_port is None:
        raise ConfigError(f"pod {plan.name}: its container declares no port")
    port = proxy.ports.app_port(plan.container_port)
    if port is None:
        raise ConfigError(
            f"pod {plan.name}: no local port for container port {plan.container_port}"
        )
    recipe = plan.recipe
    if not isinstance(recipe, PythonService):
        # MariaDB pods are started by runtime.local.databases; mongod is not installed here.
        if isinstance(recipe, MariaDbRecipe):
            raise ConfigError(f"pod {plan.name}: a MariaDB image runs no Python service")
        raise ConfigError(
            f"pod {plan.name}: MongoDB images do not run on the local mesh (no mongod);"
            " use bookinfo-mysql.yaml and bookinfo-ratings-v2-mysql.yaml for a database"
        )
    probe: HttpProbe | TcpProbe = (
        HttpProbe(f"http://127.0.0.1:{port}{plan.readiness_path}")
        if plan.readiness_path
        else TcpProbe(port)
    )
    return ProcessSpec(
        name=f"{plan.name}.{plan.container}",
        argv=recipe.argv(sys.executable, port),
        log_path=log_dir / f"{plan.name}.{plan.container}.log",
        env=app_env(plan, proxy, base_env),
        probe=probe,
        backoff_initial=backoff,
        backoff_max=10.0,
        stop_grace=3.0,
    )
