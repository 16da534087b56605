"""What analysing Bookinfo with destination-rule-all.yaml rightly reports: the subsets of
versions the input does not deploy (ratings v2-mysql, details v2...), CM1015 [IST0173], as
``istioctl analyze`` reports them too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from canarymesh.api import kube
from canarymesh.api.diagnostics import Diagnostic
from canarymesh.api.objects import Resource, select


def deployed_versions(resources: Sequence[Resource[BaseModel]]) -> set[tuple[str, str]]:
    """(app, version) of every Deployment of the input."""
    found = set()
    for deployment in select(resources, kube.Deployment):
        labels = deployment.spec.template.metadata.labels
        found.add((labels.get("app", ""), labels.get("version", "")))
    return found


def unexpected(
    diagnostics: Iterable[Diagnostic], resources: Sequence[Resource[BaseModel]]
) -> list[str]:
    """Errors and warnings, less CM1015 on subsets whose version no Deployment runs."""
    deployed = deployed_versions(resources)
    left = []
    for d in diagnostics:
        if d.level not in ("error", "warning"):
            continue
        if d.code == "CM1015" and d.resource and d.value:
            app = d.resource.rsplit("/", 1)[-1]
            if (app, d.value.strip('"')) not in deployed:
                continue
        left.append(str(d))
    return left
