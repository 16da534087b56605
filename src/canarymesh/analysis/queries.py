"""PromQL templates of the canary analysis, as data, and :func:`render_query`. Pure.

The controller renders these per version (canary, stable) and window, runs them through a
``MetricsSource`` (:mod:`canarymesh.ports`) and hands the numbers to the judges as a
:class:`~canarymesh.analysis.windows.Window`. Users' custom templates go through the same
renderer, so a misspelt variable fails loudly instead of querying nothing (Flagger renders with
``missingkey=error`` for the same reason).

Only Istio's standard metrics and labels are used (``istio_requests_total``,
``istio_request_duration_milliseconds_bucket``; ``reporter``, ``destination_service``,
``destination_version``, ``response_code``), so the same text works against the local mesh's
Prometheus and a cluster's. ``reporter="destination"`` counts each request once, at the sidecar
of the pod that served it, whoever called it.

Variables: ``namespace``, ``host`` (the FQDN, as in ``destination_service``), ``version`` (the
``version`` label of the subset's pods), ``interval`` (a PromQL range such as ``30s``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from canarymesh.api.canary import TEMPLATE_VARIABLE, template_variables
from canarymesh.errors import ConfigError

__all__ = ["GROUP_QUERIES", "QUERIES", "render_query", "template_variables"]

_SELECTOR = (
    'reporter="destination",destination_service="{{ host }}",destination_version="{{ version }}"'
)

QUERIES: Mapping[str, str] = {
    # Request-level counts for the statistical judge: requests and 5xx answers in the window.
    "request-count": f"sum(increase(istio_requests_total{{{_SELECTOR}}}[{{{{ interval }}}}]))",
    "error-count": (
        f'sum(increase(istio_requests_total{{{_SELECTOR},response_code=~"5.."}}'
        f"[{{{{ interval }}}}]))"
    ),
    # Cumulative histogram counts by bucket bound (le), for the latency proportion test and p99.
    "duration-buckets": (
        f"sum by (le) (increase(istio_request_duration_milliseconds_bucket{{{_SELECTOR}}}"
        f"[{{{{ interval }}}}]))"
    ),
    # Flagger's two built-ins, for the threshold judge and for display.
    "request-success-rate": (
        f'sum(rate(istio_requests_total{{{_SELECTOR},response_code!~"5.."}}[{{{{ interval }}}}]))'
        f" / sum(rate(istio_requests_total{{{_SELECTOR}}}[{{{{ interval }}}}])) * 100"
    ),
    "request-duration": (
        f"histogram_quantile(0.99, sum by (le) (rate("
        f"istio_request_duration_milliseconds_bucket{{{_SELECTOR}}}[{{{{ interval }}}}])))"
    ),
}

# A release group's end-to-end comparison at the ingress: the requests the gateway sent to the
# group's way in (``host``), in the session slice (``slice`` is ``="<Canary name>"``: they
# carried ``x-canarymesh-group``) or not (``!="<Canary name>"``: no header, another group's, or
# Istio's ``unknown`` for a missing one). ``canarymesh_group`` is the tag the mesh makes of that
# header (Istio: a Telemetry resource's ``tagOverrides``, in
# canary-manifests/release-group/telemetry-release-group.yaml).
_GROUP_SELECTOR = 'reporter="source",destination_service="{{ host }}",canarymesh_group{{ slice }}'
GROUP_QUERIES: Mapping[str, str] = {
    "request-count": (
        f"sum(increase(istio_requests_total{{{_GROUP_SELECTOR}}}[{{{{ interval }}}}]))"
    ),
    "error-count": (
        f'sum(increase(istio_requests_total{{{_GROUP_SELECTOR},response_code=~"5.."}}'
        f"[{{{{ interval }}}}]))"
    ),
    "duration-buckets": (
        f"sum by (le) (increase(istio_request_duration_milliseconds_bucket{{{_GROUP_SELECTOR}}}"
        f"[{{{{ interval }}}}]))"
    ),
}

_BRACES = re.compile(r"\{\{|\}\}")


def render_query(template: str, variables: Mapping[str, str]) -> str:
    """``template`` with every ``{{ name }}`` replaced; a name without a value is a ConfigError.

    A template may be the name of a built-in query (a key of :data:`QUERIES`) or PromQL text.
    """
    text = QUERIES.get(template, template)
    missing = [name for name in template_variables(text) if name not in variables]
    if missing:
        known = ", ".join(sorted(variables)) or "none"
        raise ConfigError(
            f"query template uses {', '.join(missing)} but only {known} "
            f"{'is' if len(variables) == 1 else 'are'} defined: {text}"
        )
    rendered = TEMPLATE_VARIABLE.sub(lambda m: variables[m.group(1)], text)
    if _BRACES.search(rendered):
        raise ConfigError(f"query template has a malformed {{{{ }}}} placeholder: {text}")
    return rendered
