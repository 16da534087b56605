"""A per-resource collector of diagnostics, shared by the validation modules. Pure.

Validation functions take a :class:`Reporter` and call it with a code, a field path (YAML
names, from the document root) and the offending value; the reporter turns the path into a
line with the resource's recorded field lines.
"""

from __future__ import annotations

from pydantic import BaseModel

from canarymesh.api.diagnostics import Diagnostic, make, render_value
from canarymesh.api.fieldpaths import format_path
from canarymesh.api.kinds import split_api_version
from canarymesh.api.objects import FieldPath, Resource

__all__ = ["NO_VALUE", "Reporter"]

NO_VALUE = object()


class Reporter:
    def __init__(self, resource: Resource[BaseModel]) -> None:
        self.resource = resource
        self.label = f"{resource.kind} {resource.display_name}"
        self.group = split_api_version(resource.api_version)[0]
        self.found: list[Diagnostic] = []

    def __call__(
        self, code: str, path: FieldPath, value: object = NO_VALUE, **args: object
    ) -> None:
        shown = None if value is NO_VALUE else render_value(value)
        self.found.append(
            make(
                code,
                file=self.resource.source.file,
                line=self.resource.line_of(path),
                resource=self.label,
                field=format_path(path) or None,
                value=shown,
                api_group=self.group,
                **args,
            )
        )
