"""The local CA: a persisted root and Istio-shaped SPIFFE workload certificates."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from canarymesh.errors import ConfigError
from canarymesh.runtime.local.ca import LocalCA, needs_rotation, sds_secrets, spiffe_id
from canarymesh.runtime.local.codec import SECRET, pack

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
ID = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"


def test_spiffe_id_is_istios_and_rejects_bad_names() -> None:
    assert spiffe_id("default", "bookinfo-reviews") == ID
    with pytest.raises(ConfigError, match="invalid service account 'Bad_SA'"):
        spiffe_id("default", "Bad_SA")
    with pytest.raises(ConfigError, match="invalid namespace ''"):
        spiffe_id("", "sa")


def test_workload_cert_has_empty_subject_critical_spiffe_san_and_p256(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path, NOW)
    issued = ca.issue(ID, NOW, dt.timedelta(hours=1))
    cert = issued.certificate
    assert cert.subject == x509.Name([])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [ID]
    key = cert.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"
    assert cert.not_valid_after_utc - NOW == dt.timedelta(hours=1)
    cert.verify_directly_issued_by(ca.root)
    assert issued.chain_pem.endswith(ca.root_pem)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_root_is_persisted_private_and_reloaded(tmp_path: Path) -> None:
    first = LocalCA.load_or_create(tmp_path, NOW)
    key_file = tmp_path / "ca" / "root-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = LocalCA.load_or_create(tmp_path, NOW + dt.timedelta(days=1))
    assert again.root_pem == first.root_pem
    # A certificate issued after the reload still chains to the first root.
    again.issue(ID, NOW).certificate.verify_directly_issued_by(first.root)


def test_rotation_happens_after_half_the_lifetime(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path, NOW)
    issued = ca.issue(ID, NOW, dt.timedelta(hours=2))
    # Valid from NOW-5min (back-dated) to NOW+2h: half of 125 minutes is reached at NOW+57.5min.
    assert not needs_rotation(issued, NOW + dt.timedelta(minutes=57))
    assert needs_rotation(issued, NOW + dt.timedelta(minutes=58))
    assert ca.rotate_if_needed(issued, NOW + dt.timedelta(minutes=10)) is issued
    rotated = ca.rotate_if_needed(issued, NOW + dt.timedelta(hours=1), dt.timedelta(hours=2))
    assert rotated.identity == ID and rotated.not_after > issued.not_after


def test_foreign_trust_domain_and_naive_time_are_refused(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path, NOW)
    with pytest.raises(ConfigError, match="not in trust domain"):
        ca.issue("spiffe://example.org/ns/a/sa/b", NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        ca.issue(ID, dt.datetime(2026, 1, 1))


def test_sds_secrets_are_istios_names_and_valid_envoy_secrets(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path, NOW)
    secrets = sds_secrets(ca.issue(ID, NOW), ca.root_pem)
    assert [s["name"] for s in secrets] == ["default", "ROOTCA"]
    for secret in secrets:
        assert pack(SECRET, secret).type_url == SECRET
