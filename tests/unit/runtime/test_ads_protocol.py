"""The ADS server's protocol rules, driven by a real gRPC client on loopback (no Envoy)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import descriptor_pool, message_factory
from google.rpc import status_pb2

from canarymesh.errors import ConfigError
from canarymesh.runtime.local import codec
from canarymesh.runtime.local.ads import AdsServer
from canarymesh.runtime.local.xds_status import SyncState
from canarymesh.xds.snapshot import InconsistentSnapshot, XdsSnapshot, build_snapshot
from canarymesh.xds.types import EnvoyJson

NODE = "productpage-v1"


@dataclass(frozen=True)
class Snap:
    """A bare snapshot for inputs the xds package would never build (unknown types)."""

    version: str
    resources: Mapping[str, Sequence[Mapping[str, object]]]

    def check_consistent(self) -> None:
        pass


def _cluster(name: str, timeout: str = "1s") -> EnvoyJson:
    return {"name": name, "connect_timeout": timeout}


def _route(name: str, prefix: str = "/") -> EnvoyJson:
    return {"name": name, "virtual_hosts": [{"name": "vh", "domains": [prefix]}]}


def snap(
    version: str, clusters: Sequence[str] = ("a",), timeout: str = "1s", **routes: str
) -> XdsSnapshot:
    """``version`` only labels the call site: the real version is the content hash."""
    del version
    by_type: dict[str, list[EnvoyJson]] = {
        codec.CLUSTER: [_cluster(c, timeout) for c in clusters],
        codec.ROUTE: [_route(n, p) for n, p in routes.items()],
    }
    return build_snapshot(NODE, by_type)


class Client:
    """One ADS stream, as Envoy would drive it."""

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call
        self.first = True
        # Cancelling a pending call.read() would cancel the whole RPC, so one task reads.
        self.received: asyncio.Queue[discovery_pb2.DiscoveryResponse] = asyncio.Queue()
        self.reader = asyncio.get_running_loop().create_task(self._read_all())

    async def _read_all(self) -> None:
        async for response in self.call:
            self.received.put_nowait(response)

    async def request(
        self,
        type_url: str,
        names: Sequence[str] = (),
        nonce: str = "",
        version: str = "",
        error: str | None = None,
    ) -> None:
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            response_nonce=nonce,
            version_info=version,
        )
        if self.first:
            request.node.id, self.first = NODE, False
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=3, message=error))
        await self.call.write(request)

    async def read(self, timeout: float = 2.0) -> discovery_pb2.DiscoveryResponse:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def nothing(self, within: float = 0.2) -> bool:
        try:
            await asyncio.wait_for(self.received.get(), within)
        except TimeoutError:
            return True
        return False

    async def ack(
        self, response: discovery_pb2.DiscoveryResponse, names: Sequence[str] = ()
    ) -> None:
        await self.request(response.type_url, names, response.nonce, response.version_info)


def run(scenario: Callable[[AdsServer, Client], Awaitable[None]]) -> None:
    async def main() -> None:
        server = AdsServer()
        port = await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
            call = stub.StreamAggregatedResources()
            client = Client(call)
            try:
                await scenario(server, client)
            finally:
                call.cancel()
                client.reader.cancel()
                await server.stop(0)

    asyncio.run(main())


def names_in(response: discovery_pb2.DiscoveryResponse) -> list[str]:
    out = []
    for packed in response.resources:
        message = codec_message(response.type_url)
        packed.Unpack(message)
        out.append(message.name)
    return out


def codec_message(type_url: str) -> Any:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_url.split("/", 1)[1])
    return message_factory.GetMessageClass(descriptor)()


def test_ack_makes_a_type_synced_and_unchanged_types_are_not_resent() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1", r80="/"))
        await client.request(codec.CLUSTER)
        cds = await client.read()
        assert cds.type_url == codec.CLUSTER and names_in(cds) == ["a"]
        assert server.node_status(NODE).type(codec.CLUSTER).state is SyncState.STALE
        await client.ack(cds)
        await client.request(codec.ROUTE, ["r80"])
        rds = await client.read()
        await client.ack(rds, ["r80"])
        status = await server.wait_settled(NODE)
        assert status.synced and status.snapshot_version == snap("1", r80="/").version

        # Only the route changes: only RDS goes out again.
        server.set_snapshot(NODE, snap("2", r80="/other"))
        again = await client.read()
        assert again.type_url == codec.ROUTE and again.version_info != rds.version_info
        assert await client.nothing()

    run(scenario)


def test_nack_is_recorded_and_the_rejected_version_is_never_resent() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1"))
        await client.request(codec.CLUSTER)
        await client.ack(first := await client.read())
        server.set_snapshot(NODE, snap("2", timeout="2s"))
        bad = await client.read()
        await client.request(codec.CLUSTER, nonce=bad.nonce, version=first.version_info, error="no")
        status = await server.wait_settled(NODE)
        cds = status.type(codec.CLUSTER)
        assert (cds.state, cds.error, cds.acked) == (SyncState.NACKED, "no", first.version_info)
        assert status.errors == {"Cluster": "no"} and not status.synced

        server.set_snapshot(NODE, snap("3", timeout="2s"))  # same clusters, new snapshot
        assert await client.nothing()
        server.set_snapshot(NODE, snap("4", timeout="3s"))
        fixed = await client.read()
        assert fixed.version_info not in (bad.version_info, first.version_info)
        await client.ack(fixed)
        assert (await server.wait_settled(NODE)).synced

    run(scenario)


def test_one_response_in_flight_per_type_and_only_the_newest_follows() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1", clusters=["a"]))
        await client.request(codec.CLUSTER)
        first = await client.read()
        server.set_snapshot(NODE, snap("2", clusters=["a", "b"]))
        server.set_snapshot(NODE, snap("3", clusters=["a", "b", "c"]))
        assert await client.nothing()
        await client.ack(first)
        newest = await client.read()
        assert names_in(newest) == ["a", "b", "c"]
        assert await client.nothing()

    run(scenario)


def test_routes_wait_behind_a_blocked_cluster_update() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1", clusters=["a"], r80="/"))
        await client.request(codec.CLUSTER)
        cds = await client.read()
        await client.request(codec.ROUTE, ["r80"])
        rds = await client.read()
        await client.ack(rds, ["r80"])
        # CDS is still in flight; a change to both must not let the route overtake the cluster.
        server.set_snapshot(NODE, snap("2", clusters=["a", "b"], r80="/b"))
        assert await client.nothing()
        await client.ack(cds)
        assert [(await client.read()).type_url for _ in range(2)] == [codec.CLUSTER, codec.ROUTE]

    run(scenario)


def test_named_types_send_only_the_names_asked_for_and_resend_when_they_change() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1", r80="/", r90="/x"))
        await client.request(codec.ROUTE, ["r80"])
        only = await client.read()
        assert names_in(only) == ["r80"]
        await client.ack(only, ["r80"])
        await client.request(codec.ROUTE, ["r80", "r90"], only.nonce, only.version_info)
        both = await client.read()
        assert names_in(both) == ["r80", "r90"] and both.version_info == only.version_info

    run(scenario)


def test_secrets_are_served_over_the_same_stream() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1"))
        server.set_secrets(NODE, [{"name": "default"}, {"name": "ROOTCA"}])
        await client.request(codec.SECRET, ["ROOTCA"])
        sds = await client.read()
        assert sds.type_url == codec.SECRET and names_in(sds) == ["ROOTCA"]

    run(scenario)


def test_bad_resources_are_refused_when_set_not_inside_the_stream() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        with pytest.raises(ConfigError, match="Cluster 'a' is not valid: .*no field named"):
            server.set_snapshot(NODE, Snap("1", {codec.CLUSTER: [{"name": "a", "bogus": 1}]}))
        with pytest.raises(ConfigError, match="two Cluster resources are named 'a'"):
            server.set_snapshot(NODE, Snap("1", {codec.CLUSTER: [{"name": "a"}, {"name": "a"}]}))
        with pytest.raises(ConfigError, match="has no 'cluster_name'"):
            server.set_snapshot(NODE, Snap("1", {codec.ENDPOINT: [{"name": "a"}]}))
        with pytest.raises(ConfigError, match="unknown xDS resource type"):
            server.set_snapshot(NODE, Snap("1", {"type.googleapis.com/no.Such": [{"name": "a"}]}))
        with pytest.raises(KeyError):
            server.node_status(NODE)

    run(scenario)


def test_an_inconsistent_snapshot_is_never_published() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1"))
        await client.request(codec.CLUSTER)
        await client.ack(await client.read())
        dangling: dict[str, list[EnvoyJson]] = {
            codec.ROUTE: [
                {
                    "name": "r80",
                    "virtual_hosts": [
                        {
                            "name": "vh",
                            "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "gone"}}],
                        }
                    ],
                }
            ]
        }
        with pytest.raises(InconsistentSnapshot, match="cluster 'gone' is missing"):
            server.set_snapshot(NODE, build_snapshot(NODE, dangling))
        assert await client.nothing()
        assert (await server.wait_settled(NODE)).synced

    run(scenario)


def test_unchanged_types_reuse_their_encoding_and_a_dangling_route_is_still_refused() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1", r80="/"))
        await client.request(codec.CLUSTER)
        cds = await client.read()
        await client.ack(cds)
        await client.request(codec.ROUTE, ["r80"])
        await client.ack(await client.read(), ["r80"])
        reused = server.encodings_reused
        # Clusters, endpoints, listeners and secrets keep their digests: only routes are encoded.
        server.set_snapshot(NODE, snap("2", r80="/other"))
        assert server.encodings_reused - reused == 4
        rds = await client.read()
        assert rds.type_url == codec.ROUTE and names_in(rds) == ["r80"]
        await client.ack(rds, ["r80"])
        assert await client.nothing()

        dangling = build_snapshot(
            NODE,
            {
                codec.CLUSTER: [_cluster("a")],
                codec.ROUTE: [
                    {
                        "name": "r80",
                        "virtual_hosts": [
                            {
                                "name": "vh",
                                "domains": ["*"],
                                "routes": [{"route": {"cluster": "b"}}],
                            }
                        ],
                    }
                ],
            },
        )
        with pytest.raises(InconsistentSnapshot, match="cluster 'b' is missing"):
            server.set_snapshot(NODE, dangling)
        assert await client.nothing()
        status = await server.wait_settled(NODE)
        assert status.synced and status.type(codec.CLUSTER).acked == cds.version_info

    run(scenario)


def test_named_types_the_proxy_stops_asking_for_are_ignored_not_stale() -> None:
    async def scenario(server: AdsServer, client: Client) -> None:
        server.set_snapshot(NODE, snap("1", r80="/"))
        await client.request(codec.CLUSTER)
        await client.ack(await client.read())
        await client.request(codec.ROUTE, ["r80"])
        rds = await client.read()
        # The listener that wanted r80 went away before the answer was applied: no ACK comes,
        # only an unsubscribe (empty names) carrying the previous nonce.
        await client.request(codec.ROUTE, [], nonce="0")
        status = await server.wait_settled(NODE)
        assert status.type(codec.ROUTE).state is SyncState.IGNORED and status.synced
        # Asked again: the proxy says it holds nothing with the latest nonce, so it is resent.
        await client.request(codec.ROUTE, ["r80"], nonce=rds.nonce, version="")
        again = await client.read()
        assert names_in(again) == ["r80"] and again.version_info == rds.version_info

    run(scenario)
