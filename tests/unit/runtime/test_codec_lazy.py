"""Proto types load on demand: a fresh process packs a whole sidecar snapshot importing only
the packages its resources name, far fewer than the distribution's 765 modules."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from canarymesh.errors import ConfigError
from canarymesh.runtime.local import codec

SCRIPT = """
import json, sys, yaml
from canarymesh.runtime.local import codec
for kind, url in (("listeners", codec.LISTENER), ("clusters", codec.CLUSTER),
                  ("routes", codec.ROUTE), ("endpoints", codec.ENDPOINT)):
    data = yaml.safe_load(open(f"tests/golden/xds/pod-bookinfo/out.{kind}.yaml"))
    for resource in data["productpage-v1-0"]:
        codec.pack(url, resource)
print(json.dumps(sum(1 for m in sys.modules if m.endswith("_pb2"))))
"""


def test_a_fresh_process_imports_only_the_proto_packages_it_needs() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60
    )
    imported = json.loads(done.stdout)
    assert 20 < imported < 300, imported


def test_an_unknown_type_inside_an_any_is_still_a_clear_error() -> None:
    listener = {
        "name": "x",
        "address": {"socket_address": {"address": "0.0.0.0", "port_value": 1}},
        "filter_chains": [
            {"filters": [{"name": "f", "typed_config": {"@type": "type.googleapis.com/no.Such"}}]}
        ],
    }
    with pytest.raises(ConfigError, match="Listener 'x' is not valid"):
        codec.pack(codec.LISTENER, listener)
