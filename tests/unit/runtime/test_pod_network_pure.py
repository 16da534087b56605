"""The pure parts of pod networks: istio-iptables rules, addresses, names, launchers, plans."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canarymesh.api.loader import load_text
from canarymesh.errors import ConfigError
from canarymesh.mesh.capture import iptables_rules
from canarymesh.runtime.local.addresses import AddressBook
from canarymesh.runtime.local.podnet import pod_mac, resolv_conf, veth_name
from canarymesh.runtime.local.pods import expand, plan_pods
from canarymesh.runtime.local.sandbox import app_launcher, gateway_launcher, sidecar_launcher

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "capture" / "istio-iptables.rules"


def test_capture_rules_match_the_golden_file() -> None:
    rules = iptables_rules("10.96.0.10")
    if os.environ.get("CANARYMESH_REFRESH_GOLDEN") == "1":
        GOLDEN.write_text(rules)
    assert rules == GOLDEN.read_text()


def test_capture_rules_redirect_as_istio_iptables_does() -> None:
    lines = iptables_rules("10.96.0.10").splitlines()
    assert lines[0] == "*nat" and lines[-1] == "COMMIT"
    assert "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006" in lines
    assert "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in lines
    # The proxy's own traffic is never captured again (uid 1337), nor the stats port inbound.
    assert "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN" in lines
    assert "-A ISTIO_INBOUND -p tcp --dport 15090 -j RETURN" in lines
    # The exemption of the sidecar's calls to its app comes before any redirect.
    source = lines.index("-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN")
    assert source < min(i for i, line in enumerate(lines) if "-j ISTIO_REDIRECT" in line)
    dns = [line for line in lines if "--dport 53" in line]
    assert dns == [
        "-A OUTPUT -p udp -d 10.96.0.10/32 --dport 53 -m owner ! --uid-owner 1337"
        " -j REDIRECT --to-ports 15053"
    ]


def test_addresses_are_stable_reserved_and_freed(tmp_path: Path) -> None:
    path = tmp_path / "addresses.json"
    book = AddressBook.load(path, "10.244.0.0/16", "10.96.0.0/12")
    assert (book.gateway, book.nameserver) == ("10.244.0.1", "10.96.0.10")
    first = book(("service", "default/details"))
    second = book(("service", "webapps/details"))
    assert first != second and first not in ("10.96.0.1", "10.96.0.10")
    assert book(("service", "default/details")) == first
    book.pods = {"reviews-v1-0": "default/reviews-v1-abc"}
    pod = book(("pod", "reviews-v1-0"))
    assert pod == book.assigned["pod"]["default/reviews-v1-abc"] and pod != "10.244.0.1"
    book.save()
    again = AddressBook.load(path, "10.244.0.0/16", "10.96.0.0/12")
    assert again(("service", "webapps/details")) == second
    again.keep_only("service", {"webapps/details"})
    assert again(("service", "default/other")) == first  # freed, handed out again


def test_addresses_outside_new_cidrs_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "addresses.json"
    path.write_text(json.dumps({"service": {"default/a": "10.96.0.20"}, "pod": {}, "entry": {}}))
    book = AddressBook.load(path, "10.244.0.0/16", "10.100.0.0/16")
    assert "default/a" not in book.assigned["service"]


@pytest.mark.parametrize(
    ("pods", "services", "message"),
    [
        ("10.0.0.0/8", "10.96.0.0/12", "overlap"),
        ("10.244.0.0/30", "10.96.0.0/12", "too small"),
        ("10.244.0.1/16", "10.96.0.0/12", "not an IPv4 CIDR"),
        ("fd00::/64", "10.96.0.0/12", "not an IPv4 CIDR"),
    ],
)
def test_bad_cidrs_are_refused(tmp_path: Path, pods: str, services: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        AddressBook.load(tmp_path / "a.json", pods, services)


def test_a_full_range_is_a_clear_error(tmp_path: Path) -> None:
    book = AddressBook.load(tmp_path / "a.json", "10.244.0.0/28", "10.96.0.0/28")
    for n in range(13):  # 14 hosts, the bridge reserved
        book(("pod", f"p{n}"))
    with pytest.raises(ConfigError, match="no free pod address left in 10.244.0.0/28"):
        book(("pod", "one-too-many"))


@given(st.lists(st.ip_addresses(v=4), unique=True, max_size=50))
def test_veth_names_fit_linux_and_differ_per_pod_ip(ips: list[ipaddress.IPv4Address]) -> None:
    inside = [ipaddress.IPv4Address(0x0AF40000 | (int(ip) & 0xFFFF)) for ip in ips]
    names = [veth_name(str(ip)) for ip in inside]
    assert all(len(name) <= 15 for name in names)
    assert len(set(names)) == len(set(inside))


@given(st.lists(st.ip_addresses(v=4), unique=True, max_size=50))
def test_a_pod_ip_always_has_the_same_unicast_local_mac(ips: list[ipaddress.IPv4Address]) -> None:
    macs = [pod_mac(str(ip)) for ip in ips]
    assert len(set(macs)) == len(ips)  # one MAC per IP, the same each time it is handed out
    assert macs == [pod_mac(str(ip)) for ip in ips]
    for mac in macs:
        first = int(mac.split(":")[0], 16)
        assert len(mac.split(":")) == 6 and first & 0b10 and not first & 0b1
    assert pod_mac("10.244.0.3") == "0a:58:0a:f4:00:03"


def test_resolv_conf_searches_the_pods_namespace_first() -> None:
    text = resolv_conf("webapps", "10.96.0.10")
    assert text.splitlines() == [
        "search webapps.svc.cluster.local svc.cluster.local cluster.local",
        "nameserver 10.96.0.10",
        "options ndots:5",
    ]


@pytest.mark.parametrize(
    ("text", "env", "expanded"),
    [
        ("$(A)-$(B)", {"A": "x", "B": "y"}, "x-y"),
        ("$(MISSING)", {}, "$(MISSING)"),
        ("$$(A)", {"A": "x"}, "$(A)"),
        ("$$$(A)", {"A": "x"}, "$x"),
        ("no vars", {"A": "x"}, "no vars"),
        ("$(A", {"A": "x"}, "$(A"),
    ],
)
def test_kubernetes_variable_expansion(text: str, env: dict[str, str], expanded: str) -> None:
    assert expand(text, env) == expanded


def test_launchers_put_each_process_in_its_place() -> None:
    sidecar = sidecar_launcher("cm-x-default.p")
    assert sidecar is not None and sidecar[:4] == ("ip", "netns", "exec", "cm-x-default.p")
    assert "--reuid" in sidecar and sidecar[sidecar.index("--reuid") + 1] == "1337"
    gateway = gateway_launcher("cm-x-istio-system.gw")
    assert gateway is not None and "--reuid" not in gateway  # root: CAP_SYS_ADMIN for its ports
    assert sidecar_launcher(None) is None and app_launcher(None, None) is None
    user = app_launcher("ns", (1000, 1000))
    assert user is not None and user[user.index("--reuid") + 1] == "1000"
    root = app_launcher("ns", None)
    assert root is not None
    if os.geteuid() == 0:
        bounding = root[root.index("--bounding-set") + 1]
        assert bounding.startswith("-all,") and "net_admin" not in bounding
        assert "--no-new-privs" in root


DEPLOYMENT = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
data: {A: one, B: two}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext: {runAsUser: 2000}
      containers:
      - name: web
        image: httpd:2.4
        command: [/usr/bin/env, "--", "$(GREETING)"]
        args: ["$(A)", "$$(B)"]
        workingDir: /srv
        envFrom: [{configMapRef: {name: cfg}, prefix: CFG_}, {configMapRef: {name: cfg}}]
        env:
        - {name: A, value: override}
        - {name: GREETING, value: "hi-$(B)"}
        ports: [{name: web, containerPort: 8080}]
"""


def _plans(text: str) -> list:  # type: ignore[type-arg]
    loaded = load_text(text, "t.yaml")
    assert not loaded.diagnostics.has_errors, loaded.diagnostics.lines()
    return plan_pods(loaded.resources)


def test_a_container_runs_its_own_command_with_kubernetes_semantics() -> None:
    plans = _plans(DEPLOYMENT)
    assert [p.replica_id for p in plans] == sorted(["web-0.shop", "web-1.shop"])
    plan = plans[0]
    env = dict(plan.env)
    assert env["CFG_A"] == "one" and env["B"] == "two" and env["A"] == "override"
    assert env["GREETING"] == "hi-two"  # expanded against the variables before it
    assert plan.command == ("/usr/bin/env", "--", "hi-two", "override", "$(B)")
    assert (plan.working_dir, plan.run_as, plan.recipe) == ("/srv", (2000, 2000), None)
    assert plan.port_names == (("web", 8080),)
    assert plan.proxy_id == f"{plan.name}.shop"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ('        command: [/usr/bin/env, "--", "$(GREETING)"]\n', "give the container a"),
        ("        workingDir: /srv\n", None),
    ],
)
def test_an_unknown_image_without_command_is_refused_naming_what_to_add(
    change: str, message: str | None
) -> None:
    text = DEPLOYMENT.replace(change, "")
    if message is None:
        assert _plans(text)[0].working_dir is None
        return
    with pytest.raises(ConfigError) as err:
        _plans(text)
    assert "deployment shop/web container 'web'" in str(err.value)
    assert "httpd:2.4" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("workingDir: /srv", "workingDir: srv", "must be an absolute path"),
        ("runAsUser: 2000", "runAsUser: 1337", "sidecar's user"),
        ("runAsUser: 2000", "runAsNonRoot: true", "runAsNonRoot needs a runAsUser"),
        ("name: cfg}, prefix", "name: nope}, prefix", "ConfigMap shop/nope, which is not applied"),
    ],
)
def test_container_settings_that_cannot_run_are_refused(old: str, new: str, message: str) -> None:
    assert old in DEPLOYMENT
    with pytest.raises(ConfigError, match=message):
        _plans(DEPLOYMENT.replace(old, new))


def test_a_catalog_image_under_run_as_non_root_takes_the_images_user() -> None:
    text = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: details-v1}
spec:
  selector: {matchLabels: {app: details}}
  template:
    metadata: {labels: {app: details}}
    spec:
      containers:
      - name: details
        image: docker.io/istio/examples-bookinfo-details-v1:1.20.3
        securityContext: {runAsNonRoot: true}
        ports: [{containerPort: 9080}]
"""
    assert _plans(text)[0].run_as == (1000, 1000)
