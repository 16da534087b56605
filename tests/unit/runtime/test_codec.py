"""``codec.PackCache``: route configs assembled from cached virtual hosts are the very bytes a
whole-config parse gives, a changed virtual host is the only one parsed again, and a bad one fails
with the whole-config parse's error."""

from __future__ import annotations

import pytest

from canarymesh.errors import ConfigError
from canarymesh.mesh.index import MeshIndex
from canarymesh.runtime.local import codec
from canarymesh.xds.generate import generate
from canarymesh.xds.types import EnvoyJson, JsonValue
from tests.unit.xds.meshes import bookinfo


def _bytes(packed: object) -> bytes:
    value = getattr(packed, "value", None)
    assert isinstance(value, bytes)
    return value


def _config(*targets: str, extra: EnvoyJson | None = None) -> EnvoyJson:
    hosts: list[JsonValue] = [
        {
            "name": f"vh{i}",
            "domains": [f"h{i}"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": target}}],
            **(extra or {}),
        }
        for i, target in enumerate(targets)
    ]
    return {"name": "r", "validate_clusters": False, "virtual_hosts": hosts}


def test_bookinfo_route_configs_pack_to_the_same_bytes_as_a_whole_parse() -> None:
    mesh = bookinfo(
        "networking/destination-rule-all.yaml",
        "networking/bookinfo-gateway.yaml",
        "networking/virtual-service-reviews-90-10.yaml",
    )
    index = MeshIndex.of(mesh)
    cache = codec.PackCache()
    configs = [r for p in mesh.proxies for r in generate(mesh, p, index).routes]
    hosts = [c["virtual_hosts"] for c in configs]
    assert sum(len(h) for h in hosts if isinstance(h, list)) > 20
    for config in configs:
        whole = codec.pack(codec.ROUTE, config)
        assembled = cache.pack(codec.ROUTE, config, codec.canonical(config))
        assert assembled.type_url == whole.type_url
        assert _bytes(assembled) == _bytes(whole)


def test_only_a_changed_virtual_host_is_parsed_again() -> None:
    cache = codec.PackCache()
    first = _config("a", "b", "c")
    cache.pack(codec.ROUTE, first, codec.canonical(first))
    assert cache.vhosts_parsed == 3
    flipped = _config("a", "b", "d")
    packed = cache.pack(codec.ROUTE, flipped, codec.canonical(flipped))
    assert cache.vhosts_parsed == 4
    assert _bytes(packed) == _bytes(codec.pack(codec.ROUTE, flipped))


def test_a_bad_virtual_host_fails_as_a_whole_parse_does() -> None:
    bad = _config("a", extra={"bogus": 1})
    with pytest.raises(ConfigError) as whole:
        codec.pack(codec.ROUTE, bad)
    with pytest.raises(ConfigError) as cached:
        codec.PackCache().pack(codec.ROUTE, bad, codec.canonical(bad))
    assert str(cached.value) == str(whole.value)
    assert "bogus" in str(whole.value)
