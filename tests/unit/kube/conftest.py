"""The fake API server and a KubeApi on it, for the cluster runtime's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from canarymesh.runtime.kube.client import KubeApi
from tests.unit.kube.fake_apiserver import FakeApiServer


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def api(server: FakeApiServer) -> Iterator[KubeApi]:
    with client.ApiClient(client.Configuration(host=server.url)) as api_client:
        yield KubeApi(api_client)
