"""PromQL templates are data; rendering them fails loudly on a missing variable."""

from __future__ import annotations

import pytest

from canarymesh.analysis.queries import QUERIES, render_query, template_variables
from canarymesh.errors import ConfigError

VARS = {"host": "reviews.default.svc.cluster.local", "version": "v3", "interval": "30s"}
SEL = (
    'reporter="destination",destination_service="reviews.default.svc.cluster.local",'
    'destination_version="v3"'
)


def test_builtin_queries_render_to_istio_standard_promql() -> None:
    assert render_query("request-count", VARS) == (
        f"sum(increase(istio_requests_total{{{SEL}}}[30s]))"
    )
    assert render_query("error-count", VARS) == (
        f'sum(increase(istio_requests_total{{{SEL},response_code=~"5.."}}[30s]))'
    )
    assert render_query("duration-buckets", VARS) == (
        f"sum by (le) (increase(istio_request_duration_milliseconds_bucket{{{SEL}}}[30s]))"
    )
    assert render_query("request-success-rate", VARS) == (
        f'sum(rate(istio_requests_total{{{SEL},response_code!~"5.."}}[30s])) '
        f"/ sum(rate(istio_requests_total{{{SEL}}}[30s])) * 100"
    )
    assert render_query("request-duration", VARS) == (
        "histogram_quantile(0.99, sum by (le) (rate("
        f"istio_request_duration_milliseconds_bucket{{{SEL}}}[30s])))"
    )


def test_every_builtin_uses_only_the_documented_variables() -> None:
    for name, template in QUERIES.items():
        assert set(template_variables(template)) <= {"host", "version", "interval"}, name


def test_a_missing_variable_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        render_query("request-count", {"host": "reviews", "interval": "1m"})
    assert str(caught.value).startswith(
        "query template uses version but only host, interval are defined: sum(increase("
    )


def test_custom_templates_render_with_spaces_or_without() -> None:
    text = 'sum(rate(errs{ns="{{namespace}}",v="{{ version }}"}[{{  interval }}]))'
    rendered = render_query(text, {"namespace": "webapps", "version": "v3", "interval": "1m"})
    assert rendered == 'sum(rate(errs{ns="webapps",v="v3"}[1m]))'


def test_a_malformed_placeholder_is_refused() -> None:
    with pytest.raises(ConfigError, match="malformed"):
        render_query("up{job='{{ job'}", {"job": "x"})
