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

__all__ = ["CONFIG_QUERIES", "GROUP_QUERIES", "QUERIES", "render_query", "template_variables"]

_SELECTOR = (
    'reporter="destination",destination_service="{{ host }}",destination_version="{{ version }}"'
)

QUERIES: Mapping[str, str] = {
    # The counters themselves, one series each (no sum, so a counter reset can be told per
    # series): a window's counts are their values at its end minus those at its start. Exact at
    # any length down to one scrape interval, where ``increase`` would extrapolate.
    "request-counters": f"istio_requests_total{{{_SELECTOR}}}",
    "error-counters": f'istio_requests_total{{{_SELECTOR},response_code=~"5.."}}',
    "duration-counters": f"istio_request_duration_milliseconds_bucket{{{_SELECTOR}}}",
    # Request-level counts over an interval: requests and 5xx answers in the window.
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

# A config canary's two sets of sidecars (routing/config_split), by runtime. ``version`` is the
# set (``canary``/``stable``), ``canary`` the Canary's ``namespace/name``, ``reporter`` the side
# that runs the changed config: ``source`` (the clients, for routes and destination rules) or
# ``destination`` (the servers, for authorization policies). The local control plane counts them
# in families of its own; on a cluster the pods' ``canarymesh.io/config-canary`` label reaches
# Istio's metrics through the Prometheus pod label map (addons/prometheus.yaml). A config change
# fails as 5xx, as a denial (403) or as a reset (0), so all three count as errors.
_LOCAL_CONFIG = (
    'config_canary="{{ canary }}",set="{{ version }}",reporter="{{ reporter }}",'
    'destination_service="{{ host }}"'
)
_CLUSTER_CONFIG = (
    'reporter="{{ reporter }}",destination_service="{{ host }}",'
    'canarymesh_io_config_canary="{{ version }}"'
)
_CONFIG_ERRORS = 'response_code=~"0|403|5.."'
CONFIG_QUERIES: Mapping[str, Mapping[str, str]] = {
    "local": {
        "request-counters": f"canarymesh_config_canary_requests_total{{{_LOCAL_CONFIG}}}",
        "error-counters": (
            f"canarymesh_config_canary_requests_total{{{_LOCAL_CONFIG},{_CONFIG_ERRORS}}}"
        ),
        "duration-counters": (
            f"canarymesh_config_canary_request_duration_milliseconds_bucket{{{_LOCAL_CONFIG}}}"
        ),
    },
    "cluster": {
        "request-counters": f"istio_requests_total{{{_CLUSTER_CONFIG}}}",
        "error-counters": f"istio_requests_total{{{_CLUSTER_CONFIG},{_CONFIG_ERRORS}}}",
        "duration-counters": f"istio_request_duration_milliseconds_bucket{{{_CLUSTER_CONFIG}}}",
    },
}

# A release group's end-to-end comparison at the ingress: the requests the gateway sent to the
# group's way in (``host``), in the session slice (``slice`` is ``="<Canary name>"``: they
# carried ``x-canarymesh-group``) or not (``!="<Canary name>"``: no header, another group's, or
# Istio's ``unknown`` for a missing one). ``canarymesh_group`` is the tag the mesh makes of that
# header (Istio: a Telemetry resource's ``tagOverrides``, in
# canary-manifests/release-group/telemetry-release-group.yaml). Counters, as the one-service
# queries above.
_GROUP_SELECTOR = 'reporter="source",destination_service="{{ host }}",canarymesh_group{{ slice }}'
GROUP_QUERIES: Mapping[str, str] = {
    "request-counters": f"istio_requests_total{{{_GROUP_SELECTOR}}}",
    "error-counters": f'istio_requests_total{{{_GROUP_SELECTOR},response_code=~"5.."}}',
    "duration-counters": f"istio_request_duration_milliseconds_bucket{{{_GROUP_SELECTOR}}}",
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
