"""The Envoy stats a pod asks Istio to keep, read from its annotations as istio-agent reads
them: ``proxy.istio.io/config``'s ``proxyStatsMatcher`` and the older comma-separated
``sidecar.istio.io/statsInclusion{Prefixes,Suffixes,Regexps}``. Pure; used by the mesh builder
(which puts them in the proxy's bootstrap) and by validation (a regex Envoy cannot compile
would keep the sidecar from starting)."""

from __future__ import annotations

from collections.abc import Mapping

from canarymesh.api.yamldocs import parse_documents

__all__ = [
    "KINDS",
    "PROXY_CONFIG",
    "SIDECAR_ANNOTATIONS",
    "proxy_config_entries",
    "sidecar_entries",
]

KINDS = ("prefixes", "suffixes", "regexps")
SIDECAR_ANNOTATIONS = {
    "prefixes": "sidecar.istio.io/statsInclusionPrefixes",
    "suffixes": "sidecar.istio.io/statsInclusionSuffixes",
    "regexps": "sidecar.istio.io/statsInclusionRegexps",
}
PROXY_CONFIG = "proxy.istio.io/config"
_MATCHER_FIELDS = {
    "prefixes": "inclusionPrefixes",
    "suffixes": "inclusionSuffixes",
    "regexps": "inclusionRegexps",
}


def sidecar_entries(annotations: Mapping[str, str], kind: str) -> tuple[str, ...]:
    """The comma-separated entries of the ``sidecar.istio.io`` annotation of ``kind``."""
    value = annotations.get(SIDECAR_ANNOTATIONS[kind], "")
    return tuple(p.strip() for p in value.split(",") if p.strip())


def proxy_config_entries(annotations: Mapping[str, str], kind: str) -> tuple[str, ...]:
    """``proxyStatsMatcher``'s entries of ``kind`` in ``proxy.istio.io/config``, read with the
    manifests' own guarded YAML reader (an annotation is user input too); () when none."""
    text = annotations.get(PROXY_CONFIG, "")
    if not text.strip():
        return ()
    documents, _ = parse_documents(text)
    data = documents[0].data if len(documents) == 1 else None
    matcher = data.get("proxyStatsMatcher") if isinstance(data, dict) else None
    values = matcher.get(_MATCHER_FIELDS[kind]) if isinstance(matcher, dict) else None
    if not isinstance(values, list):
        return ()
    return tuple(v for v in values if isinstance(v, str) and v)
