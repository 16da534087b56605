"""Ratings v2 on MySQL through the mesh: the seed README's "Database Integration" commands.

``mysqldb`` runs as a local MariaDB pod with its own sidecar; ratings-v2-mysql reaches it through
its own sidecar's outbound TCP listener (MYSQL_DB_HOST/PORT rewritten to it), and the database's
sidecar counts the connection on its inbound listener.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.mesh.conftest import REPO, start_mesh
from tests.support.manifests import with_pod_annotations

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MYSQL = "bookinfo/platform/kube/bookinfo-mysql.yaml"
FILES = [
    "bookinfo/platform/kube/bookinfo.yaml",
    "-",  # MYSQL, its pod asking for its inbound cluster's stats (Istio makes none by default)
    "bookinfo/platform/kube/bookinfo-ratings-v2-mysql.yaml",
    "bookinfo/networking/destination-rule-all.yaml",
    "bookinfo/networking/virtual-service-ratings-mysql.yaml",
    "bookinfo/networking/bookinfo-gateway.yaml",
]


def test_ratings_v2_reads_mysql_through_both_sidecars(tmp_path: Path) -> None:
    mesh = start_mesh(tmp_path / "state", "--no-prometheus")
    try:
        mysql = with_pod_annotations(
            (REPO / MYSQL).read_text(),
            "mysqldb-v1",
            {"sidecar.istio.io/statsInclusionPrefixes": "cluster.inbound"},
        )
        mesh.cli("apply", *(a for f in FILES for a in ("-f", f)), "--wait", stdin=mysql)
        pods = mesh.json("get", "pods", "-o", "json")["items"]
        database = next(p for p in pods if p["deployment"] == "mysqldb-v1")
        assert database["ready"] == "2/2"
        page = mesh.page()
        # reviews v3 with ratings 5 and 4 from the MySQL seed: nine red stars.
        assert page.count("glyphicon glyphicon-star") == 9 and "text-red-500" in page
        # The database's sidecar accepted the connection (mTLS, from ratings' sidecar) and sent
        # it on to MySQL: its inbound 3306 cluster counts it.
        stats = mesh.admin_stats(database)
        assert stats["cluster.inbound|3306||.upstream_cx_total"] >= 1, stats
    finally:
        mesh.down()
