"""The local mesh's certificate authority: a persisted root and short-lived SPIFFE workload certs.

The control plane issues each pod a certificate for its service account, as istiod's CA does, and
serves it to that pod's Envoy over SDS as the secrets ``default`` (its own chain and key) and
``ROOTCA`` (the trust bundle): :func:`sds_secrets` builds those ``Secret`` dicts for
:meth:`canarymesh.runtime.local.ads.AdsServer.set_secrets`.

Workload certificates follow Istio's shape: EC P-256, an empty subject, and the identity only in a
critical URI SAN ``spiffe://cluster.local/ns/<ns>/sa/<sa>`` (RFC 5280 requires a critical SAN when
the subject is empty). They live 24 hours by default and :func:`needs_rotation` says when half of
that has passed, which is when Istio's agent rotates.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from canarymesh.errors import ConfigError
from canarymesh.runtime.local.credentials import secure_file, write_secret_file

__all__ = [
    "ROOT_SECRET",
    "WORKLOAD_SECRET",
    "LocalCA",
    "WorkloadCert",
    "needs_rotation",
    "sds_secrets",
    "spiffe_id",
]

TRUST_DOMAIN = "cluster.local"
WORKLOAD_SECRET = "default"  # Istio's SDS names, so Istio-shaped listeners and clusters just work
ROOT_SECRET = "ROOTCA"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences, as istiod does


def spiffe_id(namespace: str, service_account: str) -> str:
    """``spiffe://cluster.local/ns/<namespace>/sa/<service_account>``, validated."""
    for what, value in (("namespace", namespace), ("service account", service_account)):
        if len(value) > 253 or not all(_DNS_LABEL.match(p) for p in value.split(".")):
            raise ConfigError(
                f"invalid {what} {value!r}: must be lower-case letters, digits, '-' and '.'"
            )
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/sa/{service_account}"


@dataclass(frozen=True, slots=True)
class WorkloadCert:
    """A workload's certificate chain (leaf then root) and private key, both PEM."""

    identity: str
    chain_pem: str
    key_pem: str
    not_before: dt.datetime
    not_after: dt.datetime

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.chain_pem.encode())


def needs_rotation(cert: WorkloadCert, now: dt.datetime, fraction: float = 0.5) -> bool:
    """True once ``fraction`` of the certificate's lifetime has passed (Istio rotates at 50%)."""
    lifetime = cert.not_after - cert.not_before
    return now >= cert.not_before + lifetime * fraction


class LocalCA:
    """A root CA kept in ``<state_dir>/ca`` so that restarts keep trusting issued certificates."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self._key = key
        self.root = cert
        self.root_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def load_or_create(
        cls, state_dir: Path, now: dt.datetime, lifetime: dt.timedelta = dt.timedelta(days=365)
    ) -> LocalCA:
        _require_aware(now)
        directory = state_dir / "ca"
        key_path, cert_path = directory / "root-key.pem", directory / "root-cert.pem"
        if key_path.exists() and cert_path.exists():
            secure_file(key_path)  # a key written before secrets had their own owner
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigError(f"{key_path} is not an EC private key")
            return cls(key, x509.load_pem_x509_certificate(cert_path.read_bytes()))
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _root_certificate(key, now, lifetime)
        directory.mkdir(parents=True, exist_ok=True)
        _write_private(key_path, _key_pem(key))
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert)

    def issue(
        self, identity: str, now: dt.datetime, lifetime: dt.timedelta = dt.timedelta(hours=24)
    ) -> WorkloadCert:
        """A fresh key and certificate for ``identity`` (a ``spiffe://`` URI)."""
        _require_aware(now)
        if not identity.startswith(f"spiffe://{TRUST_DOMAIN}/"):
            raise ConfigError(f"identity {identity!r} is not in trust domain {TRUST_DOMAIN}")
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = now - _BACKDATE, now + lifetime
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.root.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]),
                critical=True,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(digital_signature=True, key_encipherment=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM).decode() + self.root_pem
        return WorkloadCert(identity, chain, _key_pem(key).decode(), not_before, not_after)

    def rotate_if_needed(
        self, cert: WorkloadCert, now: dt.datetime, lifetime: dt.timedelta = dt.timedelta(hours=24)
    ) -> WorkloadCert:
        """``cert`` itself while it is young, a new one for the same identity once it is not."""
        return self.issue(cert.identity, now, lifetime) if needs_rotation(cert, now) else cert


def sds_secrets(cert: WorkloadCert, root_pem: str) -> list[dict[str, object]]:
    """The SDS ``Secret`` resources Istio's agent serves: ``default`` and ``ROOTCA``."""
    return [
        {
            "name": WORKLOAD_SECRET,
            "tls_certificate": {
                "certificate_chain": {"inline_string": cert.chain_pem},
                "private_key": {"inline_string": cert.key_pem},
            },
        },
        {"name": ROOT_SECRET, "validation_context": {"trusted_ca": {"inline_string": root_pem}}},
    ]


def _require_aware(now: dt.datetime) -> None:
    # A naive datetime would be taken as local time and shift validity by the UTC offset.
    if now.tzinfo is None:
        raise ValueError("certificate times need a timezone-aware datetime (UTC)")


def _root_certificate(
    key: ec.EllipticCurvePrivateKey, now: dt.datetime, lifetime: dt.timedelta
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, TRUST_DOMAIN),
            x509.NameAttribute(NameOID.COMMON_NAME, "canarymesh local root CA"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by the mesh's secrets owner only, atomically."""
    write_secret_file(path, data)
