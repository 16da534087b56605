"""Two real Envoys talk mutual TLS with certificates from the local CA, delivered over SDS."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import aiohttp
import pytest

from canarymesh.runtime.local import codec
from canarymesh.runtime.local.ca import LocalCA, sds_secrets, spiffe_id
from canarymesh.runtime.local.xds_status import SyncState
from canarymesh.xds.snapshot import build_snapshot
from tests.integration.runtime.harness import (
    Resource,
    cluster,
    http_listener,
    running_mesh,
    upstreams,
)
from tests.support.processes import free_port

pytestmark = pytest.mark.integration

TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
REVIEWS = spiffe_id("default", "bookinfo-reviews")
PRODUCTPAGE = spiffe_id("default", "bookinfo-productpage")
RATINGS = spiffe_id("default", "bookinfo-ratings")


def _sds(name: str) -> Resource:
    return {"name": name, "sds_config": {"ads": {}, "resource_api_version": "V3"}}


def _validation(peer: str) -> Resource:
    return {
        "default_validation_context": {
            "match_typed_subject_alt_names": [{"san_type": "URI", "matcher": {"exact": peer}}]
        },
        "validation_context_sds_secret_config": _sds("ROOTCA"),
    }


def upstream_tls(peer: str) -> Resource:
    context = {
        "@type": TLS + "UpstreamTlsContext",
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [_sds("default")],
            "combined_validation_context": _validation(peer),
        },
    }
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def downstream_tls(peer: str) -> Resource:
    context = {
        "@type": TLS + "DownstreamTlsContext",
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_certificate_sds_secret_configs": [_sds("default")],
            "combined_validation_context": _validation(peer),
        },
    }
    return {"name": "envoy.transport_sockets.tls", "typed_config": context}


def _routes(name: str, by_prefix: dict[str, str]) -> Resource:
    routes = [{"match": {"prefix": p}, "route": {"cluster": c}} for p, c in by_prefix.items()]
    return {"name": name, "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": routes}]}


def test_envoys_talk_mtls_with_ca_certs_and_a_wrong_san_fails(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    ca = LocalCA.load_or_create(tmp_path / "state", now)
    inbound, outbound = free_port(), free_port()

    async def scenario() -> None:
        async with upstreams("reviews-app") as ports, running_mesh(tmp_path) as mesh:
            good, wrong = "outbound|9080||reviews", "outbound|9080|wrong|reviews"
            mesh.ads.set_snapshot(
                "reviews-v1",
                build_snapshot(
                    "reviews-v1",
                    {
                        codec.CLUSTER: [cluster("inbound|9080||", ports["reviews-app"])],
                        codec.LISTENER: [
                            http_listener("inbound", inbound, "in", downstream_tls(PRODUCTPAGE))
                        ],
                        codec.ROUTE: [_routes("in", {"/": "inbound|9080||"})],
                    },
                    external_secrets=True,  # the CA's secrets come through set_secrets
                ),
            )
            mesh.ads.set_snapshot(
                "productpage-v1",
                build_snapshot(
                    "productpage-v1",
                    {
                        codec.CLUSTER: [
                            cluster(good, inbound, upstream_tls(REVIEWS)),
                            cluster(wrong, inbound, upstream_tls(RATINGS)),
                        ],
                        codec.LISTENER: [http_listener("outbound", outbound, "9080")],
                        codec.ROUTE: [_routes("9080", {"/wrong": wrong, "/": good})],
                    },
                    external_secrets=True,
                ),
            )
            for node, identity in (("reviews-v1", REVIEWS), ("productpage-v1", PRODUCTPAGE)):
                mesh.ads.set_secrets(node, sds_secrets(ca.issue(identity, now), ca.root_pem))
            client = await mesh.start_envoy("productpage-v1")
            await mesh.start_envoy("reviews-v1")

            assert await mesh.get(outbound, "/reviews/0") == (200, "reviews-app")
            status, _ = await mesh.get(outbound, "/wrong")
            assert status == 503
            stats = await client.admin.stats(r"outbound\|9080\|wrong\|reviews\.ssl")
            assert stats["cluster.outbound|9080|wrong|reviews.ssl.fail_verify_san"] >= 1, stats

            # Plain HTTP straight to the STRICT inbound listener does not get through.
            with pytest.raises(aiohttp.ClientError):
                await mesh.get(inbound, "/reviews/0")

            for node in ("reviews-v1", "productpage-v1"):
                secrets = (await mesh.ads.wait_settled(node)).type(codec.SECRET)
                assert secrets.state is SyncState.SYNCED, secrets

            # Rotation: a new certificate reaches the server over SDS; traffic keeps flowing.
            before = (await mesh.ads.wait_settled("reviews-v1")).type(codec.SECRET).acked
            later = now + dt.timedelta(hours=13)
            rotated = ca.rotate_if_needed(ca.issue(REVIEWS, now), later)
            mesh.ads.set_secrets("reviews-v1", sds_secrets(rotated, ca.root_pem))
            after = (await mesh.ads.wait_settled("reviews-v1")).type(codec.SECRET)
            assert after.state is SyncState.SYNCED and after.acked != before
            assert await mesh.get(outbound, "/reviews/1") == (200, "reviews-app")

    asyncio.run(scenario())
