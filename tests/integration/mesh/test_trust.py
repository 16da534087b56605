"""Trust boundaries of the local mesh (issue 13): nobody gets a key or writes a metric without
proving which proxy it is, and Envoy's admin is out of other processes' reach.

The "attacker" here is a local process that can reach the control plane's sockets (this test
runs as root, so it can open them even where a user could not): it speaks xDS and the access-log
protocol with the real gRPC client, with no token, with another proxy's token, and as a proxy
claiming another's identity.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import stat
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from envoy.service.accesslog.v3 import als_pb2, als_pb2_grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from canarymesh.runtime.local.credentials import SECRETS_UID, TOKEN_HEADER
from tests.integration.mesh.conftest import LocalMesh, start_mesh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"


@pytest.fixture(scope="module", params=["auto", "host"])
def trust_mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalMesh]:
    network = str(request.param)
    mesh = start_mesh(tmp_path_factory.mktemp(f"trust-{network}") / "state", "--network", network)
    try:
        mesh.cli("apply", "-f", "bookinfo/platform/kube/bookinfo.yaml", "--wait")
        yield mesh
    finally:
        mesh.down()


def _token(mesh: LocalMesh, purpose: str, proxy_id: str) -> str:
    secret = (mesh.state_dir / "mesh-secret").read_bytes()
    return hmac.new(secret, f"{purpose}/{proxy_id}".encode(), hashlib.sha256).hexdigest()


def _proxy_id(mesh: LocalMesh, deployment: str) -> str:
    pod = mesh.pod(deployment)
    return f"{pod['name']}.{pod['namespace']}"


def _target(mesh: LocalMesh, key: str) -> str:
    """The gRPC target of the control plane's ADS (``ads``) or access-log (``als``) server."""
    status = mesh.status()
    address = str(status["ads"] if key == "ads" else status["telemetry"]["als"])
    return f"unix:{address}" if address.startswith("/") else address


async def _ads(target: str, node: str, token: str | None) -> tuple[str, list[Any]]:
    """Ask as ``node`` for listeners and the workload secret; (gRPC status, responses)."""
    metadata = [(TOKEN_HEADER, token)] if token else []

    async def requests() -> AsyncIterator[discovery_pb2.DiscoveryRequest]:
        request = discovery_pb2.DiscoveryRequest(type_url=LISTENER)
        request.node.id = node
        yield request
        # After the server's answer to the first: sending into a call the server has already
        # refused fails in the Python client itself (INTERNAL, "execute_batch").
        await asyncio.sleep(0.3)
        yield discovery_pb2.DiscoveryRequest(type_url=SECRET, resource_names=["default"])
        await asyncio.sleep(2)

    found: list[Any] = []
    async with grpc.aio.insecure_channel(target) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        call = stub.StreamAggregatedResources(requests(), metadata=metadata, timeout=3)
        try:
            async for response in call:
                found.append(response)
                if len(found) == 2:
                    return "OK", found
        except grpc.aio.AioRpcError as err:
            return str(err.code().name), found
    return "OK", found


def test_xds_serves_a_proxy_only_with_its_own_token(trust_mesh: LocalMesh) -> None:
    mesh = trust_mesh
    target = _target(mesh, "ads")
    reviews = _proxy_id(mesh, "reviews-v1")
    productpage = _proxy_id(mesh, "productpage-v1")
    log = mesh.state_dir / "daemon.log"
    before = log.read_text().count("ADS: refused a stream")
    # No token, and productpage's token used to ask for reviews: refused, nothing sent.
    for token in (None, _token(mesh, "xds", productpage), "0" * 64):
        code, responses = asyncio.run(_ads(target, reviews, token))
        assert (code, responses) == ("PERMISSION_DENIED", []), (token, code)
    # The access-log token is not an xDS credential either.
    code, responses = asyncio.run(_ads(target, reviews, _token(mesh, "als", reviews)))
    assert (code, responses) == ("PERMISSION_DENIED", [])
    assert log.read_text().count("ADS: refused a stream") == before + 4
    # With its own token the proxy gets its own config: listeners, and its own key.
    code, responses = asyncio.run(_ads(target, reviews, _token(mesh, "xds", reviews)))
    assert code == "OK" and {r.type_url for r in responses} == {LISTENER, SECRET}
    # The sidecars themselves are still served (their bootstrap holds their token).
    statuses = mesh.json("proxy-status", "-o", "json")
    assert all(p["synced"] for p in statuses), statuses


async def _als(target: str, token: str | None, node: str, log_name: str) -> str:
    metadata = [(TOKEN_HEADER, token)] if token else []

    async def messages() -> AsyncIterator[als_pb2.StreamAccessLogsMessage]:
        message = als_pb2.StreamAccessLogsMessage()
        message.identifier.node.id = node
        message.identifier.log_name = log_name
        for _ in range(50):
            entry = message.http_logs.log_entry.add()
            entry.response.response_code.value = 503
            entry.request.request_headers["x-canarymesh-source"] = "workload=forged"
        yield message

    async with grpc.aio.insecure_channel(target) as channel:
        stub = als_pb2_grpc.AccessLogServiceStub(channel)
        try:
            await stub.StreamAccessLogs(messages(), metadata=metadata, timeout=5)
        except grpc.aio.AioRpcError as err:
            return str(err.code().name)
    return "OK"


def _metrics(mesh: LocalMesh) -> str:
    port = mesh.status()["telemetry"]["metrics_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_only_the_mesh_proxies_write_telemetry_each_as_itself(trust_mesh: LocalMesh) -> None:
    mesh = trust_mesh
    target = _target(mesh, "als")
    reviews = _proxy_id(mesh, "reviews-v1")
    ratings = _proxy_id(mesh, "ratings-v1")
    forged_codes = [
        asyncio.run(_als(target, None, reviews, f"{reviews}|inbound")),
        asyncio.run(_als(target, _token(mesh, "als", ratings), reviews, f"{reviews}|inbound")),
        asyncio.run(_als(target, _token(mesh, "als", reviews), reviews, f"{ratings}|inbound")),
        asyncio.run(_als(target, _token(mesh, "xds", reviews), reviews, f"{reviews}|inbound")),
    ]
    assert forged_codes == ["PERMISSION_DENIED"] * 4
    text = _metrics(mesh)
    assert 'response_code="503"' not in text and "forged" not in text
    rejected = [
        line for line in text.splitlines() if line.startswith("canarymesh_telemetry_rejected")
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in rejected if "_total" in line) >= 4


def test_secrets_and_sockets_are_private(trust_mesh: LocalMesh) -> None:
    mesh = trust_mesh
    for name in ("mesh-secret", "token", "ca/root-key.pem"):
        info = (mesh.state_dir / name).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, name
        if os.geteuid() == 0:
            assert info.st_uid == SECRETS_UID, name  # not root's: an unprivileged root app's
    ads = mesh.status()["ads"]
    if str(ads).startswith("/"):
        info = Path(str(ads)).stat()
        assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == 1337


def test_envoy_admin_is_not_reachable_by_other_processes(trust_mesh: LocalMesh) -> None:
    mesh = trust_mesh
    pod = mesh.pod("details-v1")
    sidecar = next(c for c in pod["containers"] if c["name"].endswith(".istio-proxy"))
    if mesh.network == "host":
        # The admin is a 0600 Unix socket; the loopback port serves /stats/prometheus only.
        port = pod["ports"]["admin"]
        request = urllib.request.Request(f"http://127.0.0.1:{port}/quitquitquit", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        err.value.close()
        assert err.value.code == 404
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/stats/prometheus", timeout=5
        ) as response:
            assert b"envoy_server_live" in response.read()
    # Still the same process, and its config still readable through the control plane.
    after = next(c for c in mesh.pod("details-v1")["containers"] if c["name"] == sidecar["name"])
    assert after["pid"] == sidecar["pid"]
    dump = json.loads(mesh.cli("proxy-config", "clusters", str(pod["name"]), "-o", "json").stdout)
    assert dump["items"]


def test_spans_come_only_from_the_proxies_in_a_pod_network(trust_mesh: LocalMesh) -> None:
    mesh = trust_mesh
    url = str(mesh.status()["tracing_url"])
    forged = json.dumps([{"traceId": "1" * 32, "id": "2" * 16, "name": "forged"}]).encode()
    request = urllib.request.Request(
        url + "/api/v2/spans", data=forged, headers={"Content-Type": "application/json"}
    )
    if mesh.network == "pod":
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        err.value.close()
        assert err.value.code == 403
        with urllib.request.urlopen(url + "/api/v2/traces?limit=100", timeout=5) as response:
            assert b"forged" not in response.read()
    else:  # the shared network's proxies send spans to this very port
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status in (200, 202)
