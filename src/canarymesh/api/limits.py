"""How much input Canary Mesh reads, and the size limits Kubernetes and Istio put on objects.

Pure. The reading limits protect the CLI and the control plane from hostile or broken input
(a 10 GB file, a "billion laughs" alias bomb, YAML nested ten thousand levels deep): each is
checked before the costly step it protects, so such input is refused in milliseconds with
bounded memory. The object limits are those of the Kubernetes API server and Istio's
validation, so that what the local mesh accepts a cluster accepts too. ``docs/diagnostics.md``
lists them all (generated from this module).
"""

from __future__ import annotations

__all__ = [
    "KIB",
    "MAX_ALIAS_BYTES",
    "MAX_ALIAS_VALUES",
    "MAX_ANNOTATIONS_BYTES",
    "MAX_API_BODY_BYTES",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_ENVOY_TOTAL_WEIGHT",
    "MAX_INPUT_BYTES",
    "MAX_INT32",
    "MAX_INT64",
    "MAX_LOCAL_REPLICAS",
    "MAX_OBJECT_BYTES",
    "MAX_WEIGHT",
    "MIB",
    "LIMITS",
    "format_size",
    "size_args",
]

KIB = 1024
MIB = 1024 * KIB

# One file, standard input, or one text sent to the control plane's /v1/apply. Checked before
# reading it: a larger file is never read into memory.
MAX_INPUT_BYTES = 64 * MIB
# One YAML document (between --- lines): the Kubernetes API server's request body limit
# (3 MiB). Checked on the text, before the YAML parser composes it.
MAX_DOCUMENT_BYTES = 3 * MIB
# Nesting of mappings and lists in one document. Istio's deepest manifests nest about 15
# levels; Python's own recursion, and libyaml's limit of 1000, sit far above.
MAX_DEPTH = 100
# What anchors and aliases (and merge keys) may add to a document once expanded: values, and
# bytes of JSON. A "billion laughs" bomb adds hundreds of millions of values.
MAX_ALIAS_VALUES = 10_000
MAX_ALIAS_BYTES = 1 * MIB
# One object encoded as JSON: what Kubernetes stores (etcd's default limit is 1.5 MiB; the
# API server refuses ConfigMaps and Secrets over 1 MiB).
MAX_OBJECT_BYTES = 1 * MIB
# metadata.annotations, keys plus values: apimachinery's TotalAnnotationSizeLimitB.
MAX_ANNOTATIONS_BYTES = 256 * KIB
# JSON numbers beyond int64 are not integers to the API server (Go decodes them as floats).
MAX_INT64 = 2**63 - 1
# Kubernetes' and Istio's int32 fields (replicas, ports, weights).
MAX_INT32 = 2**31 - 1
# Istio's route weight is an int32 (the CRD says format: int32), refused when negative.
MAX_WEIGHT = MAX_INT32
# Envoy refuses a weighted_clusters route whose weights add up to more than a uint32.
MAX_ENVOY_TOTAL_WEIGHT = 2**32 - 1
# The local mesh runs every replica as real processes (the app, an Envoy, a network
# namespace): a Deployment asks for at most this many. A cluster has no such ceiling.
MAX_LOCAL_REPLICAS = 32
# The control plane's HTTP API refuses a larger request body (aiohttp's client_max_size).
MAX_API_BODY_BYTES = 80 * MIB

# (limit, value, why), for docs/diagnostics.md.
LIMITS: tuple[tuple[str, str, str], ...] = (
    ("Input", f"{MAX_INPUT_BYTES // MIB} MiB", "one file, standard input, or one text of an "
     "apply; larger files are not read"),
    ("Document", f"{MAX_DOCUMENT_BYTES // MIB} MiB", "one YAML document, as the Kubernetes API "
     "server's request limit; checked before parsing"),
    ("Nesting", f"{MAX_DEPTH} levels", "mappings and lists inside one document"),
    ("Aliases", f"{MAX_ALIAS_VALUES:,} values and {MAX_ALIAS_BYTES // MIB} MiB", "what anchors, "
     "aliases and merge keys may add to a document once expanded"),
    ("Object", f"{MAX_OBJECT_BYTES // MIB} MiB", "one object as JSON, as Kubernetes stores it"),
    ("Annotations", f"{MAX_ANNOTATIONS_BYTES // KIB} KiB", "keys plus values of "
     "metadata.annotations (Kubernetes' limit)"),
    ("Integers", f"{MAX_INT64:,}", "any integer (64 bits, as the API server decodes JSON)"),
    ("Route weight", f"{MAX_WEIGHT:,}", "Istio's int32 weight; the weights of one route add up "
     f"to at most {MAX_ENVOY_TOTAL_WEIGHT:,} (Envoy's uint32)"),
    ("Replicas", f"{MAX_LOCAL_REPLICAS}", "per Deployment on the local mesh, where every replica "
     "is real processes (a cluster has no such ceiling)"),
    ("API body", f"{MAX_API_BODY_BYTES // MIB} MiB", "one request to the control plane's API "
     "(an apply sends every text at once)"),
)  # fmt: skip


def format_size(size: int) -> str:
    """``512 bytes``, ``256 KiB``, ``300.5 KiB``, ``20.0 MiB``: sizes as messages show them."""
    for unit, name in ((MIB, "MiB"), (KIB, "KiB")):
        if size >= unit:
            return f"{size // unit} {name}" if size % unit == 0 else f"{size / unit:.1f} {name}"
    return f"{size} bytes"


def size_args(size: int, limit: int) -> dict[str, str]:
    """``size`` and ``limit`` for a message, in bytes when rounding would show them equal."""
    shown, most = format_size(size), format_size(limit)
    if shown == most or shown.split()[0].rstrip("0").rstrip(".") == most.split()[0]:
        return {"size": f"{size:,} bytes", "limit": f"{limit:,} bytes"}
    return {"size": shown, "limit": most}
