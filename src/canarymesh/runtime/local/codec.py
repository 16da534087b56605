"""Turns Envoy resources kept as proto3-JSON dicts into protobuf ``Any`` messages for xDS.

The ADS server (:mod:`canarymesh.runtime.local.ads`) calls :func:`pack` when a snapshot is set, so a
dict Envoy's schema does not accept fails in the caller, not later inside a gRPC stream.

``xds-protos`` registers a message type only when its ``_pb2`` module is imported, and ``ParseDict``
needs every ``@type`` nested in an ``Any`` (HTTP filters, transport sockets, ...) to be registered.
Types are loaded on demand: a type ``ParseDict`` does not find has its proto package imported
(the modules of one directory of the distribution) and the parse is retried, so no curated list
can fall behind the translation. Importing all 765 modules up front (:func:`load_all_protos`)
cost the control plane 0.4 s of start-up and 25 MB that it never used.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from google.protobuf import any_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from canarymesh.errors import ConfigError

__all__ = [
    "CLUSTER",
    "ENDPOINT",
    "LISTENER",
    "PUSH_ORDER",
    "ROUTE",
    "SECRET",
    "WILDCARD_TYPES",
    "PackCache",
    "canonical",
    "load_all_protos",
    "pack",
    "resource_name",
    "version_of",
]

_PREFIX = "type.googleapis.com/"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
_VHOST = _PREFIX + "envoy.config.route.v3.VirtualHost"

# The xDS protocol's make-before-break order: clusters (and their endpoints) exist before a
# listener or route can point at them. Secrets are requested by Envoy while a cluster or listener
# that names them warms, so they come last.
# https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations
PUSH_ORDER: tuple[str, ...] = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)

# Envoy subscribes to these by wildcard (every resource); the others by name.
WILDCARD_TYPES = frozenset({CLUSTER, LISTENER})

# The field that names a resource; ClusterLoadAssignment is the odd one out.
_NAME_FIELD = {ENDPOINT: "cluster_name"}

_PACKAGES = ("envoy", "xds", "udpa", "validate", "google", "cel", "opencensus", "opentelemetry")


@functools.cache
def load_all_protos() -> int:
    """Import every ``_pb2`` module of ``xds-protos`` once; returns how many were imported."""
    count = 0
    for file in importlib.metadata.files("xds-protos") or ():
        path = str(file)
        if not path.endswith("_pb2.py") or path.split("/", 1)[0] not in _PACKAGES:
            continue
        importlib.import_module(path[: -len(".py")].replace("/", "."))
        count += 1
    return count


def resource_name(type_url: str, resource: Mapping[str, object]) -> str:
    """The name Envoy subscribes to for ``resource`` (``name``, or ``cluster_name`` for EDS)."""
    field = _NAME_FIELD.get(type_url, "name")
    value = resource.get(field)
    if value is None:
        # proto3 JSON also allows the lowerCamelCase spelling.
        camel = field.split("_")[0] + "".join(p.title() for p in field.split("_")[1:])
        value = resource.get(camel)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{short_type(type_url)} resource has no {field!r}: {_excerpt(resource)}")
    return value


def pack(type_url: str, resource: Mapping[str, object]) -> any_pb2.Any:
    """Parse one proto3-JSON dict as ``type_url`` and wrap it in an ``Any``."""
    packed = any_pb2.Any()
    packed.Pack(parse(type_url, resource))
    return packed


_MISSING_TYPE = "Can not find message descriptor by type_url: "


def parse(type_url: str, resource: Mapping[str, object]) -> Message:
    """One proto3-JSON dict as a message of ``type_url``; ConfigError names what is wrong."""
    loaded: set[str] = set()
    while True:
        message = new_message(type_url)
        try:
            json_format.ParseDict(dict(resource), message)
            return message
        except json_format.ParseError as err:
            text = str(err)
            if _MISSING_TYPE in text:
                missing = text.split(_MISSING_TYPE, 1)[1].split()[0].rstrip(".,")
                package = missing.removeprefix(_PREFIX).rsplit(".", 1)[0]
                if package not in loaded and load_package(package):
                    loaded.add(package)
                    continue
            # The first line names the field; the rest lists every field of the message.
            reason = text.splitlines()[0]
            name = resource.get("name") or resource.get("cluster_name") or "?"
            raise ConfigError(f"{short_type(type_url)} {name!r} is not valid: {reason}") from None


@functools.cache
def _modules_by_package() -> dict[str, tuple[str, ...]]:
    """proto package (``envoy.config.cluster.v3``) -> the ``_pb2`` modules that define it."""
    found: dict[str, list[str]] = {}
    for file in importlib.metadata.files("xds-protos") or ():
        path = str(file)
        if not path.endswith("_pb2.py") or path.split("/", 1)[0] not in _PACKAGES:
            continue
        module = path[: -len(".py")].replace("/", ".")
        found.setdefault(module.rsplit(".", 1)[0], []).append(module)
    return {package: tuple(sorted(modules)) for package, modules in found.items()}


def load_package(package: str) -> bool:
    """Import every module of one proto package; False when the distribution has none."""
    modules = _modules_by_package().get(package, ())
    for module in modules:
        importlib.import_module(module)
    return bool(modules)


def new_message(type_url: str) -> Message:
    full_name = type_url.removeprefix(_PREFIX)
    pool = descriptor_pool.Default()
    try:
        descriptor = pool.FindMessageTypeByName(full_name)
    except KeyError:
        load_package(full_name.rsplit(".", 1)[0])
        try:
            descriptor = pool.FindMessageTypeByName(full_name)
        except KeyError:
            raise ConfigError(f"unknown xDS resource type {type_url!r}") from None
    message: Message = message_factory.GetMessageClass(descriptor)()
    return message


def canonical(resource: object) -> str:
    """One JSON spelling per content (sorted keys, no spaces): the key of caches and versions."""
    return json.dumps(resource, sort_keys=True, separators=(",", ":"), default=_plain)


def version_of(canonical_resources: Iterable[str]) -> str:
    """A content hash of one type's resources (their :func:`canonical` forms, in any order):
    equal content, equal version, no resend."""
    return hashlib.sha256("\n".join(sorted(canonical_resources)).encode()).hexdigest()[:16]


class PackCache:
    """Packed resources by content, so an unchanged resource is parsed once, not on every push.

    Parsing dominates a push (about 0.3-0.8 ms per resource); most pushes change one route among
    many unchanged clusters and listeners, and many proxies share identical resources.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._packed: OrderedDict[tuple[str, str], any_pb2.Any] = OrderedDict()
        self._vhosts: OrderedDict[str, Message] = OrderedDict()
        self.vhosts_parsed = 0

    def pack(self, type_url: str, resource: Mapping[str, object], key: str) -> any_pb2.Any:
        found = self._packed.get((type_url, key))
        if found is not None:
            self._packed.move_to_end((type_url, key))
            return found
        packed = self._pack_routes(resource) if type_url == ROUTE else None
        packed = packed or pack(type_url, resource)
        self._packed[(type_url, key)] = packed
        if len(self._packed) > self._size:
            self._packed.popitem(last=False)
        return packed

    def _pack_routes(self, resource: Mapping[str, object]) -> any_pb2.Any | None:
        """A route config assembled from virtual hosts parsed once per content.

        A weight flip changes one virtual host of a config that every sidecar holds; parsing
        whole configs cost ~2 ms per sidecar. None (parse the whole dict) when anything does not
        parse, so the error names the field as a whole-config parse does.
        """
        vhosts = resource.get("virtual_hosts")
        if not isinstance(vhosts, list):
            return None
        try:
            message = parse(ROUTE, {k: v for k, v in resource.items() if k != "virtual_hosts"})
            message.virtual_hosts.extend(self._vhost(vhost) for vhost in vhosts)
        except (ConfigError, TypeError):
            return None
        packed = any_pb2.Any()
        packed.Pack(message)
        return packed

    def _vhost(self, vhost: object) -> Message:
        if not isinstance(vhost, Mapping):
            raise TypeError("a virtual host is not an object")
        key = canonical(vhost)
        found = self._vhosts.get(key)
        if found is not None:
            self._vhosts.move_to_end(key)
            return found
        parsed = parse(_VHOST, vhost)
        self.vhosts_parsed += 1
        self._vhosts[key] = parsed
        if len(self._vhosts) > self._size:
            self._vhosts.popitem(last=False)
        return parsed


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else str(value)


def short_type(type_url: str) -> str:
    """``Cluster`` for ``type.googleapis.com/envoy.config.cluster.v3.Cluster``."""
    return type_url.rsplit(".", 1)[-1]


def _excerpt(resource: Mapping[str, object]) -> str:
    text = json.dumps(resource, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."
