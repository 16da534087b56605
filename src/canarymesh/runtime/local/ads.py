"""The gRPC ADS server (state of the world) that programs every local Envoy, one snapshot per node.

The local control plane calls :meth:`AdsServer.set_snapshot` with what ``canarymesh.xds``
generated for a proxy and :meth:`AdsServer.set_secrets` with what the local CA issued for it; the
server pushes to that node's open streams and records what Envoy ACKs and NACKs for
``proxy-status``.

Rules this server keeps (see the xDS protocol document):

* Every type has a version of its own, a hash of its content, so a snapshot that changes only routes
  sends only routes.
* At most one response per type is in flight; changes made meanwhile are sent once the proxy
  answers, newest only. Types go out in make-before-break order (clusters, endpoints, listeners,
  routes, secrets), and a type never overtakes an earlier type that is still waiting to be sent.
* A NACKed version is never sent again; the next snapshot change is (otherwise the proxy and the
  server loop forever on the same rejection).
* Clusters and listeners are sent whole; endpoints, routes and secrets only by the names asked for.
* With an ``authenticate`` function, a stream is served only if the token in its gRPC metadata
  (``x-canarymesh-proxy-token``) proves the node id of its first request; anything else gets
  PERMISSION_DENIED and a log line, and never a resource (a secret least of all).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import any_pb2

from canarymesh.errors import ConfigError, TemporaryError
from canarymesh.runtime.local import codec
from canarymesh.runtime.local.sockets import serve_grpc_on_socket
from canarymesh.runtime.local.xds_status import NodeStatus, TypeStatus, order_key
from canarymesh.xds import names

__all__ = ["AdsServer", "Authenticate", "SnapshotLike"]

log = logging.getLogger(__name__)

# (token from the stream's metadata or None, node id of its first request) -> allowed.
Authenticate = Callable[[str | None, str], bool]
TOKEN_METADATA = names.PROXY_TOKEN_METADATA


class PermissionDenied(Exception):
    """A stream whose token does not prove the node it asks for."""


Resources = Sequence[Mapping[str, object]]

# Encoded types kept by (type URL, content digest): a few types per proxy, a few versions each.
_ENCODINGS_KEPT = 1024


class SnapshotLike(Protocol):
    """What the server needs from a snapshot (``canarymesh.xds.snapshot.XdsSnapshot`` is one):
    a version, resource dicts by type URL (a mapping or ``(type_url, resources)`` pairs), and a
    consistency check that raises when a listener or route names something the snapshot lacks.

    A snapshot may also carry ``digests``, ``(type_url, content hash)`` pairs: a type whose digest
    was encoded before is not encoded again."""

    @property
    def version(self) -> str: ...

    @property
    def resources(self) -> Mapping[str, Resources] | Sequence[tuple[str, Resources]]: ...

    def check_consistent(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Encoded:
    """One type of one node, packed once when set: version and ``Any`` per resource name."""

    version: str
    by_name: Mapping[str, any_pb2.Any]


@dataclass(slots=True)
class _Track:
    """Per stream and type: the protocol bookkeeping behind :class:`TypeStatus`."""

    subscribed: bool = False
    names: frozenset[str] = frozenset()
    sent: str | None = None
    sent_names: frozenset[str] | None = None
    nonce: str | None = None
    in_flight: bool = False
    acked: str | None = None
    nacked: str | None = None
    error: str | None = None


class _Wake:
    """Queued to a stream when its node's snapshot or secrets change."""


_WAKE = _Wake()


@dataclass(eq=False, slots=True)
class _Stream:
    inbox: asyncio.Queue[discovery_pb2.DiscoveryRequest | _Wake | None]
    node_id: str | None = None
    tracks: dict[str, _Track] = field(default_factory=dict)
    token: str | None = None
    peer: str = ""


@dataclass(slots=True)
class _Node:
    snapshot_version: str | None = None
    config: dict[str, _Encoded] = field(default_factory=dict)
    secrets: _Encoded | None = None
    streams: list[_Stream] = field(default_factory=list)
    # The newest stream's tracks; kept after it closes so status still shows what was reached.
    tracks: dict[str, _Track] = field(default_factory=dict)

    def wanted(self, type_url: str) -> _Encoded | None:
        if type_url == codec.SECRET and self.secrets is not None:
            return self.secrets
        return self.config.get(type_url)


class AdsServer:
    """A grpc.aio ADS server on 127.0.0.1; start it inside the control plane's event loop.

    Proto types are imported as resources need them (:mod:`~canarymesh.runtime.local.codec`).
    """

    def __init__(self, authenticate: Authenticate | None = None) -> None:
        self._authenticate = authenticate
        self.denied = 0
        self._nodes: dict[str, _Node] = {}
        self._nonces = itertools.count(1)
        self._cache = codec.PackCache()
        self._encodings: OrderedDict[tuple[str, str], _Encoded] = OrderedDict()
        self.encodings_reused = 0
        self._changed = asyncio.Event()
        self._server: grpc.aio.Server | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on ``host:port`` (0 picks a free port) and return the port."""
        server = grpc.aio.server()
        ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(_Servicer(self), server)
        self.port = server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise TemporaryError(f"ADS server could not bind {host}:{port}", delay=1.0)
        await server.start()
        self._server = server
        return self.port

    async def start_unix(self, path: Path, owner: tuple[int, int] | None = None) -> str:
        """Listen on the Unix socket ``path`` (0600, owned by ``owner``: the proxies' user)."""
        self._server = await serve_grpc_on_socket(
            path,
            owner,
            lambda server: ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(
                _Servicer(self), server
            ),
        )
        return str(path)

    async def stop(self, grace: float = 0.5) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    def set_snapshot(self, node_id: str, snapshot: SnapshotLike) -> None:
        """Replace ``node_id``'s config and push what changed.

        Nothing is published when the snapshot is inconsistent (its own error) or a resource does
        not parse as its Envoy type (ConfigError): the proxy keeps what it has.
        """
        snapshot.check_consistent()
        by_type = snapshot.resources
        pairs = by_type.items() if isinstance(by_type, Mapping) else by_type
        digests = _digests(snapshot)
        config = {
            type_url: self._encoded(type_url, resources, digests.get(type_url))
            for type_url, resources in pairs
        }
        # An absent type is an empty one: Envoy must hear that its clusters or listeners are gone.
        for type_url in codec.PUSH_ORDER:
            config.setdefault(type_url, _encode(type_url, (), self._cache))
        node = self._nodes.setdefault(node_id, _Node())
        node.snapshot_version = snapshot.version
        node.config = config
        self._wake(node)

    def _encoded(self, type_url: str, resources: Resources, digest: str | None) -> _Encoded:
        # Equal digest, equal content: a weight flip re-encodes the route type only, and
        # proxies with identical types share one encoding.
        if digest is None:
            return _encode(type_url, resources, self._cache)
        key = (type_url, digest)
        found = self._encodings.get(key)
        if found is not None:
            self._encodings.move_to_end(key)
            self.encodings_reused += 1
            return found
        encoded = _encode(type_url, resources, self._cache)
        self._encodings[key] = encoded
        if len(self._encodings) > _ENCODINGS_KEPT:
            self._encodings.popitem(last=False)
        return encoded

    def set_secrets(self, node_id: str, secrets: Resources) -> None:
        """Serve these SDS ``Secret`` dicts to ``node_id`` (they replace a snapshot's secrets)."""
        node = self._nodes.setdefault(node_id, _Node())
        node.secrets = _encode(codec.SECRET, secrets, self._cache)
        self._wake(node)

    def remove_node(self, node_id: str) -> None:
        """Forget a proxy that was deleted; its open streams keep their last config."""
        self._nodes.pop(node_id, None)

    def status(self) -> dict[str, NodeStatus]:
        """Every known node's sync state, for ``canarymesh proxy-status``."""
        return {node_id: self.node_status(node_id) for node_id in sorted(self._nodes)}

    def node_status(self, node_id: str) -> NodeStatus:
        node = self._nodes.get(node_id)
        if node is None:
            raise KeyError(f"unknown proxy {node_id!r}")
        shown = {url for url, track in node.tracks.items() if track.subscribed}
        shown |= {url for url, enc in node.config.items() if enc.by_name}
        if node.secrets is not None and node.secrets.by_name:
            shown.add(codec.SECRET)
        types = []
        for type_url in sorted(shown, key=order_key):
            track = node.tracks.get(type_url, _Track())
            wanted = node.wanted(type_url)
            types.append(
                TypeStatus(
                    type_url=type_url,
                    wanted=wanted.version if wanted else None,
                    sent=track.sent,
                    acked=track.acked,
                    nacked=track.nacked,
                    error=track.error,
                    subscribed=track.subscribed,
                )
            )
        return NodeStatus(node_id, node.snapshot_version, bool(node.streams), tuple(types))

    async def wait_settled(self, node_id: str, timeout: float = 5.0) -> NodeStatus:
        """Wait until ``node_id`` answered every push (ACK or NACK); TemporaryError on timeout."""

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while node_id not in self._nodes or not self.node_status(node_id).settled:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
            except TimeoutError:
                state = self.node_status(node_id) if node_id in self._nodes else "never connected"
                raise TemporaryError(
                    f"proxy {node_id} did not settle in {timeout}s: {state}", delay=1.0
                ) from None
        return self.node_status(node_id)

    # -- stream handling (called by _Servicer) --------------------------------------------------

    async def serve(
        self,
        requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
        token: str | None = None,
        peer: str = "",
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        """Serve one ADS stream; PermissionDenied when its token does not prove its node."""
        stream = _Stream(asyncio.Queue(), token=token, peer=peer)
        reader = asyncio.create_task(_read(requests, stream.inbox))
        try:
            while (request := await stream.inbox.get()) is not None:
                for response in self._handle(stream, request):
                    yield response
        finally:
            reader.cancel()
            self._detach(stream)

    def _handle(
        self, stream: _Stream, request: discovery_pb2.DiscoveryRequest | _Wake
    ) -> list[discovery_pb2.DiscoveryResponse]:
        if isinstance(request, _Wake):
            return self._flush(stream)
        if stream.node_id is None:
            self._attach(stream, request.node.id)
        track = stream.tracks.setdefault(request.type_url, _Track())
        # The latest request always says what the proxy wants, even one with a stale nonce.
        track.names = frozenset(request.resource_names)
        track.subscribed = request.type_url in codec.WILDCARD_TYPES or bool(track.names)
        if request.response_nonce and request.response_nonce != track.nonce:
            self._notify()
            return []  # an answer to a response that has since been superseded
        if request.response_nonce:
            track.in_flight = False
            if request.HasField("error_detail"):
                track.nacked, track.error = track.sent, request.error_detail.message
            else:
                track.acked, track.nacked, track.error = request.version_info, None, None
                if request.version_info != track.sent:
                    # The proxy answered without applying it (it had no watch then): resend.
                    track.sent = None
            self._notify()
        return self._flush(stream)

    def _flush(self, stream: _Stream) -> list[discovery_pb2.DiscoveryResponse]:
        node = self._nodes.get(stream.node_id or "")
        if node is None:
            return []
        responses = []
        blocked = False
        for type_url in sorted(stream.tracks, key=order_key):
            track = stream.tracks[type_url]
            wanted = node.wanted(type_url)
            if not track.subscribed or wanted is None or not _needs_send(type_url, track, wanted):
                continue
            if track.in_flight or blocked:
                blocked = True  # later types wait, so a route never lands before its cluster
                continue
            responses.append(self._respond(type_url, track, wanted))
            endpoints = stream.tracks.get(codec.ENDPOINT)
            if type_url == codec.CLUSTER and endpoints is not None:
                # A changed cluster warms until it gets its endpoints, even unchanged ones: Envoy
                # asks again with the same names and version, and without an answer it waited out
                # initial_fetch_timeout (15 s) before using the cluster.
                endpoints.sent = None
        if responses:
            self._notify()
        return responses

    def _respond(
        self, type_url: str, track: _Track, wanted: _Encoded
    ) -> discovery_pb2.DiscoveryResponse:
        if type_url in codec.WILDCARD_TYPES:
            packed = list(wanted.by_name.values())
        else:
            packed = [wanted.by_name[n] for n in sorted(track.names) if n in wanted.by_name]
        track.sent, track.sent_names = wanted.version, track.names
        track.nonce, track.in_flight = str(next(self._nonces)), True
        return discovery_pb2.DiscoveryResponse(
            version_info=wanted.version, resources=packed, type_url=type_url, nonce=track.nonce
        )

    def admit(self, token: str | None, node_id: str, peer: str = "") -> None:
        """PermissionDenied (and a log line) unless ``token`` proves ``node_id``."""
        if self._authenticate is not None and not self._authenticate(token, node_id):
            self.denied += 1
            reason = "no proxy token" if not token else "a token that is not this node's"
            log.warning("ADS: refused a stream %s asking as %r with %s", peer, node_id, reason)
            raise PermissionDenied(f"node {node_id!r}: {reason}")

    def _attach(self, stream: _Stream, node_id: str) -> None:
        if not node_id:
            raise ConfigError("an ADS stream's first request carries no node id")
        self.admit(stream.token, node_id, stream.peer)
        stream.node_id = node_id
        node = self._nodes.setdefault(node_id, _Node())
        node.streams.append(stream)
        node.tracks = stream.tracks

    def _detach(self, stream: _Stream) -> None:
        node = self._nodes.get(stream.node_id or "")
        if node is not None and stream in node.streams:
            node.streams.remove(stream)
            if node.streams:  # the proxy's other stream is what status should show
                node.tracks = node.streams[-1].tracks
        self._notify()

    def _wake(self, node: _Node) -> None:
        for stream in node.streams:
            stream.inbox.put_nowait(_WAKE)
        self._notify()

    def _notify(self) -> None:
        # Wake every waiter once, and give later waiters a fresh event to wait on.
        self._changed.set()
        self._changed = asyncio.Event()


def _digests(snapshot: SnapshotLike) -> dict[str, str]:
    """The snapshot's per-type content digests, when it has them (``XdsSnapshot`` does)."""
    pairs = getattr(snapshot, "digests", ())
    if not isinstance(pairs, tuple):
        return {}
    return {
        url: digest for url, digest in pairs if isinstance(url, str) and isinstance(digest, str)
    }


def _needs_send(type_url: str, track: _Track, wanted: _Encoded) -> bool:
    if track.sent is None:
        return True
    if type_url not in codec.WILDCARD_TYPES and track.names != track.sent_names:
        return True
    return wanted.version not in (track.sent, track.nacked)


def _encode(
    type_url: str, resources: Iterable[Mapping[str, object]], cache: codec.PackCache
) -> _Encoded:
    by_name: dict[str, any_pb2.Any] = {}
    keys: list[str] = []
    for resource in resources:
        name = codec.resource_name(type_url, resource)
        if name in by_name:
            raise ConfigError(f"two {codec.short_type(type_url)} resources are named {name!r}")
        key = codec.canonical(resource)
        keys.append(key)
        by_name[name] = cache.pack(type_url, resource, key)
    return _Encoded(codec.version_of(keys), dict(sorted(by_name.items())))


async def _read(
    requests: AsyncIterator[discovery_pb2.DiscoveryRequest],
    inbox: asyncio.Queue[discovery_pb2.DiscoveryRequest | _Wake | None],
) -> None:
    try:
        async for request in requests:
            inbox.put_nowait(request)
    except grpc.RpcError:
        pass  # the proxy went away; the stream ends below
    finally:
        inbox.put_nowait(None)


class _Servicer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):  # type: ignore[misc]
    def __init__(self, server: AdsServer) -> None:
        self._server = server

    # grpc.aio needs an async generator function here, not a function returning one.
    async def StreamAggregatedResources(
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest], context: Any
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        metadata = dict(context.invocation_metadata() or ())
        token = metadata.get(TOKEN_METADATA)
        requests = request_iterator.__aiter__()
        try:
            first = await anext(requests)
        except (StopAsyncIteration, grpc.RpcError):
            return
        try:
            # Refused before anything else is read or sent.
            self._server.admit(token, first.node.id, context.peer())
        except PermissionDenied as err:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(err))
        async for response in self._server.serve(_chain(first, requests), token, context.peer()):
            yield response


async def _chain(
    first: discovery_pb2.DiscoveryRequest, rest: AsyncIterator[discovery_pb2.DiscoveryRequest]
) -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
    yield first
    async for request in rest:
        yield request
