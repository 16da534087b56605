"""Ratings v2 on MySQL through the mesh: the seed README's "Database Integration" commands.

``mysqldb`` runs as a local MariaDB pod with its own sidecar; ratings-v2-mysql reaches it through
its own sidecar's outbound TCP listener (MYSQL_DB_HOST/PORT rewritten to it), and the database's
sidecar counts the connection on its inbound listener.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.integration.mesh.conftest import start_mesh

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FILES = [
    "bookinfo/platform/kube/bookinfo.yaml",
    "bookinfo/platform/kube/bookinfo-mysql.yaml",
    "bookinfo/platform/kube/bookinfo-ratings-v2-mysql.yaml",
    "bookinfo/networking/destination-rule-all.yaml",
    "bookinfo/networking/virtual-service-ratings-mysql.yaml",
    "bookinfo/networking/bookinfo-gateway.yaml",
]


def test_ratings_v2_reads_mysql_through_both_sidecars(tmp_path: Path) -> None:
    mesh = start_mesh(tmp_path / "state", "--no-prometheus")
    try:
        mesh.cli("apply", *(a for f in FILES for a in ("-f", f)), "--wait")
        pods = mesh.json("get", "pods", "-o", "json")["items"]
        database = next(p for p in pods if p["deployment"] == "mysqldb-v1")
        assert database["ready"] == "2/2"
        page = mesh.page()
        # reviews v3 with ratings 5 and 4 from the MySQL seed: nine red stars.
        assert page.count("glyphicon glyphicon-star") == 9 and "text-red-500" in page
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        inbound = database["ports"]["inbound"]["3306"]
        stat = f"listener.127.0.0.1_{inbound}.downstream_cx_total"
        url = f"http://127.0.0.1:{database['ports']['admin']}/stats?format=json&filter=^{stat}$"
        with opener.open(url, timeout=5) as response:
            stats = json.loads(response.read())["stats"]
        assert stats and stats[0]["value"] >= 1, stats
    finally:
        mesh.down()
