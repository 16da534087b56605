"""Istio's security task outcomes (bookinfo-spec.md §5, §6.8, §6.9) on the local mesh.

One mesh for the module (``bookinfo_mesh``): Bookinfo, destination-rule-all, all-v1 and the
gateway. The authorization ladder uses this project's ``bookinfo/policy/`` files (callers named by
their mTLS identity); STRICT mTLS is checked with a plaintext client on a sidecar's inbound port.
Each test removes what it applied and leaves the page working.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from tests.integration.mesh.conftest import LocalMesh, plaintext_get

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICY = "bookinfo/policy/"
STAR = "glyphicon glyphicon-star"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _fetch(url: str) -> tuple[int, str]:
    try:
        with _DIRECT.open(url, timeout=10) as response:
            return response.status, str(response.read().decode())
    except urllib.error.HTTPError as err:
        return err.code, str(err.read().decode())


def _settled(url: str, wanted: Callable[[int, str], bool], timeout: float = 5.0) -> tuple[int, str]:
    """The answer once it is ``wanted``, or the last one after ``timeout`` (istio.io's CI also
    retries: a connection the gateway kept alive finishes its request on the old listener)."""
    deadline = time.monotonic() + timeout
    while not wanted(*(answer := _fetch(url))) and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


def _details_and_reviews(page: str) -> bool:
    return "Book Details" in page and "Book Reviews" in page


def _apply_policies(mesh: LocalMesh, *names: str) -> None:
    args = [arg for name in names for arg in ("-f", POLICY + name + ".yaml")]
    mesh.cli("apply", *args, "--wait")


LADDER = ("allow-nothing", "productpage-viewer", "details-viewer", "reviews-viewer")


@pytest.fixture
def ladder_cleanup(bookinfo_mesh: LocalMesh) -> Iterator[LocalMesh]:
    yield bookinfo_mesh
    # One file at a time: a failed test may have left only some of them behind.
    for name in (*LADDER, "ratings-viewer"):
        bookinfo_mesh.cli("delete", "-f", POLICY + name + ".yaml", "--wait", check=False)
    bookinfo_mesh.cli("apply", "-f", "bookinfo/networking/virtual-service-all-v1.yaml", "--wait")


def test_authorization_ladder_from_access_denied_to_stars(ladder_cleanup: LocalMesh) -> None:
    mesh = ladder_cleanup
    # As istio.io's CI does: reviews pinned to v3, so step 4 shows (red) stars.
    mesh.cli("apply", "-f", "bookinfo/networking/virtual-service-reviews-v3.yaml", "--wait")
    page_url = mesh.ingress + "/productpage"

    _apply_policies(mesh, "allow-nothing")
    assert _settled(page_url, lambda code, _: code == 403) == (403, "RBAC: access denied")

    _apply_policies(mesh, "productpage-viewer")
    status, page = _settled(page_url, lambda code, _: code == 200)
    assert status == 200 and "William Shakespeare" in page
    assert "Error fetching product details" in page
    assert "Error fetching product reviews" in page

    _apply_policies(mesh, "details-viewer", "reviews-viewer")
    status, page = _settled(page_url, lambda _, body: _details_and_reviews(body))
    assert status == 200 and "Book Details" in page and "Book Reviews" in page
    assert page.count("Ratings service is currently unavailable") == 2
    assert STAR not in page

    _apply_policies(mesh, "ratings-viewer")
    status, page = _settled(page_url, lambda _, body: _details_and_reviews(body) and STAR in body)
    assert status == 200 and "Book Details" in page
    assert STAR in page and "Ratings service is currently unavailable" not in page

    # Cleanup as the task does: delete the five policies, and the page is open again.
    args = [arg for name in (*LADDER, "ratings-viewer") for arg in ("-f", POLICY + name + ".yaml")]
    mesh.cli("delete", *args, "--wait")
    assert "viewer" not in mesh.cli("get", "authorizationpolicies").stdout
    status, page = _settled(page_url, lambda _, body: _details_and_reviews(body) and STAR in body)
    assert status == 200 and "Book Details" in page and STAR in page


STRICT = """\
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: default}
spec:
  mtls: {mode: STRICT}
"""


def _plaintext_get(port: int) -> bytes:
    """What a plaintext HTTP client gets from 127.0.0.1:port (b"" when the peer hangs up)."""
    return plaintext_get("127.0.0.1", port)


def _inbound_port(mesh: LocalMesh, deployment: str) -> int:
    pods = mesh.json("get", "pods", "-o", "json")["items"]
    pod = next(p for p in pods if p["deployment"] == deployment)
    listeners = mesh.json("proxy-config", "listeners", pod["name"], "-o", "json")["items"]
    inbound = next(
        item for item in listeners if item["active_state"]["listener"]["name"] == "inbound_9080"
    )
    port = int(inbound["active_state"]["listener"]["address"]["socket_address"]["port_value"])
    assert port == int(pod["ports"]["inbound"]["9080"])
    return port


def test_strict_mtls_refuses_a_plaintext_client_and_the_page_still_works(
    bookinfo_mesh: LocalMesh,
) -> None:
    mesh = bookinfo_mesh
    if mesh.network == "pod":
        # A client on the pod network without a sidecar (Istio's "legacy" sleep), to the pod.
        ip = str(mesh.pod("details-v1")["ip"])

        def get() -> bytes:
            return plaintext_get(ip, 9080, mesh.node_netns)
    else:
        port = _inbound_port(mesh, "details-v1")

        def get() -> bytes:
            return _plaintext_get(port)

    # PERMISSIVE (the default): the sidecar answers plaintext too.
    assert get().startswith(b"HTTP/1.1 200")
    mesh.cli("apply", "-f", "-", "--wait", stdin=STRICT)
    try:
        # curl's "000", exit 56: no HTTP answer at all, the connection is closed on the client.
        assert get() == b""
        # The first page may lose details: productpage's sidecar reused a connection that
        # details' sidecar is draining (its listener changed); the next one is whole.
        status, page = _settled(
            mesh.ingress + "/productpage", lambda _, body: "Book Details" in body
        )
        assert status == 200 and "Book Details" in page and "Book Reviews" in page
    finally:
        mesh.cli("delete", "-f", "-", "--wait", stdin=STRICT)
    assert get().startswith(b"HTTP/1.1 200")
