"""A running control plane refuses bad input as the CLI does, and stores none of it.

The texts of an apply go through the same reader and validation as ``canarymesh validate``;
the HTTP body around them is refused when it is too large, not UTF-8, not JSON, nested too
deep or of the wrong shape. A hostile local process holding the token is the attacker here:
every refusal is a 400 with one line, the control plane keeps answering, and the store (and
``store.json``) never holds what was refused.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from canarymesh.api.limits import MAX_API_BODY_BYTES
from tests.integration.mesh.conftest import LocalMesh, start_mesh
from tests.unit.api.bad_input_corpus import static_cases

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KINDS = (
    "configmap,deployment.apps,service,virtualservice.networking.istio.io,"
    "destinationrule.networking.istio.io,serviceentry.networking.istio.io,"
    "gateway.networking.istio.io,envoyfilter.networking.istio.io"
)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    mesh = start_mesh(tmp_path_factory.mktemp("refusals") / "state", "--no-prometheus")
    try:
        yield mesh
    finally:
        mesh.down()


def post(mesh: LocalMesh, body: bytes, path: str = "/v1/apply") -> tuple[int, dict[str, object]]:
    api = mesh.api()
    connection = http.client.HTTPConnection("127.0.0.1", api.port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def apply_body(*texts: str) -> bytes:
    documents = [{"source": f"t{i}.yaml", "text": text} for i, text in enumerate(texts)]
    return json.dumps({"documents": documents}).encode()


def nothing_stored(mesh: LocalMesh) -> None:
    items = mesh.api().get("/v1/resources", {"kinds": KINDS})["items"]
    assert isinstance(items, list)
    # The ingress gateway's Service is the mesh's own, never applied.
    assert [i for i in items if i["metadata"]["name"] != "istio-ingressgateway"] == []
    store = mesh.state_dir / "store.json"
    assert not store.exists() or json.loads(store.read_text()) == []


BAD_BODIES = {
    "not-utf8": b'{"documents": [{"text": "caf\xe9"}]}',
    "not-json": b'{"documents": [',
    "nested-too-deep": b"[" * 100_000 + b"]" * 100_000,
    "not-an-object": b'["documents"]',
    "documents-not-a-list": b'{"documents": "apiVersion: v1"}',
    "document-without-text": b'{"documents": [{"source": "x.yaml"}]}',
    "text-not-text": b'{"documents": [{"text": 5}]}',
    "namespace-not-text": b'{"documents": [{"text": "a: b", "namespace": []}]}',
    "wait-not-a-bool": b'{"documents": [], "wait": {"a": 1}}',
    "timeout-not-a-number": b'{"documents": [], "timeout": "soon"}',
    "lone-surrogate": b'{"documents": [{"text": "kind: ConfigMap\\nname: \\ud800"}]}',
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
def test_a_malformed_body_is_a_400_with_one_line(mesh: LocalMesh, name: str) -> None:
    status, answer = post(mesh, BAD_BODIES[name])
    assert status == 400, answer
    assert answer["kind"] == "config"
    assert "\n" not in str(answer["error"]) and "Traceback" not in str(answer["error"])
    nothing_stored(mesh)


def test_a_body_over_the_limit_is_refused_before_it_is_read(mesh: LocalMesh) -> None:
    status, answer = post(mesh, b" " * (MAX_API_BODY_BYTES + 1))
    assert status == 400
    assert "larger than" in str(answer["error"])
    nothing_stored(mesh)


# Every static case of the bad-input corpus that is YAML text, sent past the CLI.
CORPUS = [case for case in static_cases() if not case.stdin]


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_every_bad_input_sent_to_the_api_is_refused_and_not_stored(
    mesh: LocalMesh, case: object
) -> None:
    from tests.unit.api.bad_input_corpus import Case, expected

    assert isinstance(case, Case)
    status, answer = post(mesh, apply_body(case.build().decode()))
    assert status == 400, answer
    error = str(answer["error"])
    assert "Traceback" not in error
    # The same diagnostic as the CLI's, about the text's source name.
    code = expected()[case.name].split()[0]
    assert error.startswith(code) or f"\n{code} " in error, error
    nothing_stored(mesh)


def test_a_bomb_next_to_good_documents_stores_none_of_them(mesh: LocalMesh) -> None:
    good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fine\ndata:\n  a: b\n"
    bomb = next(c for c in static_cases() if c.name == "billion-laughs").build().decode()
    status, answer = post(mesh, apply_body(good, bomb))
    assert status == 400 and "CM0704" in str(answer["error"])
    nothing_stored(mesh)
    # And the control plane still answers, and still applies good input.
    status, answer = post(mesh, apply_body(good))
    assert status == 200, answer
    assert answer["lines"] == ["configmap/fine created"]
    status, answer = post(mesh, apply_body(good), "/v1/delete")
    assert status == 200 and answer["lines"] == ["configmap/fine deleted"]


def test_the_cli_refuses_before_the_control_plane_hears_of_it(
    mesh: LocalMesh, tmp_path: Path
) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_bytes(next(c for c in static_cases() if c.name == "billion-laughs").build())
    done = mesh.cli("apply", "-f", str(bomb), check=False)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 2 and "CM0704" in done.stderr
    assert "nothing applied" in done.stderr
    nothing_stored(mesh)
