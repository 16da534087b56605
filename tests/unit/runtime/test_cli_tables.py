"""The local-mesh commands' pure helpers: kubectl's ages and kinds, tables, NACK reasons, and the
``--state-dir`` precedence (command over group over environment over the default)."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from canarymesh.cli.common import state_dir, state_dir_option
from canarymesh.cli.get import _kind, age, table
from canarymesh.cli.proxy import reason
from canarymesh.errors import ConfigError


def test_ages_read_like_kubectl() -> None:
    seconds = (5, 119, 190, 300, 1500, 7200, 5 * 3600, 3 * 86400)
    assert [age(s) for s in seconds] == ["5s", "119s", "3m10s", "5m", "25m", "120m", "5h", "3d"]


def test_kinds_accept_names_plurals_and_short_names() -> None:
    assert _kind("vs") == _kind("VirtualServices") == "virtualservice.networking.istio.io"
    assert _kind("deploy") == "deployment.apps"
    assert _kind("gw") == "gateway.networking.istio.io"
    assert _kind("gateways.gateway.networking.k8s.io") == "gateway.gateway.networking.k8s.io"
    with pytest.raises(ConfigError, match='resource type "widgets"'):
        _kind("widgets")


def test_tables_align_columns_and_trim_the_last() -> None:
    rows = [["NAME", "READY"], ["details-v1-abc", "2/2"]]
    assert table(rows) == "NAME             READY\ndetails-v1-abc   2/2"


def test_nack_reason_drops_envoys_proto_dump() -> None:
    message = 'Cluster: goo.gle/debugproto\nname: "x"\ntype: EDS\n: Proto constraint failed (max 8)'
    assert reason(message) == "Proto constraint failed (max 8)"
    assert reason("missing ): a(") == "missing ): a("


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    @click.group()
    @state_dir_option
    def group() -> None:
        pass

    @group.command()
    @state_dir_option
    def show() -> None:
        click.echo(state_dir())

    runner = CliRunner()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CANARYMESH_STATE_DIR", raising=False)
    assert runner.invoke(group, ["show"]).output.strip() == str(tmp_path / ".canarymesh/default")
    monkeypatch.setenv("CANARYMESH_STATE_DIR", str(tmp_path / "env"))
    assert runner.invoke(group, ["show"]).output.strip() == str(tmp_path / "env")
    by_group = runner.invoke(group, ["--state-dir", str(tmp_path / "g"), "show"])
    assert by_group.output.strip() == str(tmp_path / "g")
    both = runner.invoke(
        group, ["--state-dir", str(tmp_path / "g"), "show", "--state-dir", str(tmp_path / "c")]
    )
    assert both.output.strip() == str(tmp_path / "c")
