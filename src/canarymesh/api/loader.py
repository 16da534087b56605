"""Load manifests: files or directories of YAML -> typed :class:`Resource` objects plus every
diagnostic, at once. Pure apart from reading the files it is given; called by the CLI
(``validate``, ``analyze``, ``apply``) and by tests.

The result is all-or-nothing for the caller: ``LoadResult.diagnostics`` holds the YAML, schema
and validation problems of the whole input, and ``apply`` refuses to change anything when
``diagnostics.has_errors``. Documents that cannot be typed (bad YAML, unknown kind, schema
errors) are left out of ``resources``, though the rest of a document with schema errors is
still validated without its bad fields; documents that are typed but break a rule (a negative
weight) are kept, so that analysis can still look at them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from canarymesh.api import validate
from canarymesh.api.argo import analysis_template_refusals, rollout_problems
from canarymesh.api.argo_analysis import ANALYSIS_KINDS, ARGO_GROUP
from canarymesh.api.canary import Canary
from canarymesh.api.diagnostics import Diagnostic, Diagnostics, make, render_value
from canarymesh.api.fieldpaths import format_path, parse_path
from canarymesh.api.inputs import Input, InputProblem, check_text, read_path
from canarymesh.api.kinds import (
    KNOWN_UNSUPPORTED,
    TRAFFIC_GROUPS,
    KindInfo,
    lookup,
    split_api_version,
)
from canarymesh.api.object_limits import object_problems
from canarymesh.api.objects import FieldPath, ObjectMeta, Resource, raw_label
from canarymesh.api.reporter import Reporter
from canarymesh.api.schema_errors import line_of, schema_diagnostics, without_bad_fields
from canarymesh.api.source import Source
from canarymesh.api.validate_config_canary import (
    RESOURCES,
    config_kind_problem,
    config_spec_problems,
)
from canarymesh.api.yamldocs import YamlDocument, YamlProblem, parse_documents
from canarymesh.api.yamlguard import peek_label
from canarymesh.errors import ConfigError

# Argo Rollouts' kinds that ``apply`` translates and ``validate`` checks field by field.
ARGO_KINDS = frozenset({"Rollout", *ANALYSIS_KINDS})

__all__ = [
    "LoadResult",
    "expand_paths",
    "load_inputs",
    "load_paths",
    "load_text",
    "parse_text",
]

_ISTIO_TOP_LEVEL = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})


@dataclass(frozen=True, slots=True)
class LoadResult:
    resources: tuple[Resource[BaseModel], ...]
    diagnostics: Diagnostics

    def __add__(self, other: LoadResult) -> LoadResult:
        return LoadResult(self.resources + other.resources, self.diagnostics + other.diagnostics)


def expand_paths(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Files as given, directories as their ``*.yaml``/``*.yml`` files (recursive, sorted).

    Anything else that exists (a pipe such as ``-f <(...)``, a device) is read as a file.
    """
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
            )
            if not found:
                problem = "directory has no .yaml or .yml file"
                problems.append(make("CM0010", file=str(path), line=0, problem=problem))
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            problem = "no such file or directory"
            problems.append(make("CM0010", file=str(path), line=0, problem=problem))
    # A file named twice (directly and through its directory) is read once.
    unique = list({file.resolve(): file for file in files}.values())
    return unique, problems


def load_paths(paths: Sequence[Path]) -> LoadResult:
    """Load, type and validate every manifest under ``paths``; never raises on bad input."""
    files, problems = expand_paths(paths)
    result = load_inputs([read_path(file) for file in files])
    return LoadResult(result.resources, result.diagnostics + Diagnostics.of(problems))


def load_text(text: str, filename: str = "<stdin>") -> LoadResult:
    """Load, type and validate the manifests of one YAML text named ``filename``."""
    return load_inputs([check_text(text, filename)])


def parse_text(text: str, filename: str) -> tuple[list[object], Diagnostics]:
    """The documents of one text as plain data, read under the same limits and YAML guards as
    :func:`load_text` but not typed; and the problems that kept any document out. For callers
    that store what they are sent (the local control plane), never YAML's own loader."""
    item = check_text(text, filename)
    if item.problem is not None:
        return [], Diagnostics.of([_refused(item, item.problem)])
    documents, problems = parse_documents(item.text)
    found = _yaml_diagnostics(filename, documents, problems)
    return [document.data for document in documents], Diagnostics.of(found)


def _yaml_diagnostics(
    filename: str, documents: Sequence[YamlDocument], problems: Sequence[YamlProblem]
) -> list[Diagnostic]:
    """The parser's problems, naming the object of a document that was built (a duplicate key)."""
    labels = {d.index: raw_label(d.data) for d in documents if isinstance(d.data, dict)}
    return [
        make(p.code, file=filename, line=p.line, resource=p.resource or labels.get(p.document),
             field=p.field, **p.args)
        for p in problems
    ]  # fmt: skip


def load_inputs(inputs: Sequence[Input]) -> LoadResult:
    """Load, type and validate the manifests of ``inputs``; one that was refused while being
    read (too large, not UTF-8) is reported with the object it holds and loads nothing."""
    resources: list[Resource[BaseModel]] = []
    diagnostics: list[Diagnostic] = []
    for item in inputs:
        if item.problem is not None:
            diagnostics.append(_refused(item, item.problem))
            continue
        documents, problems = parse_documents(item.text)
        diagnostics.extend(_yaml_diagnostics(item.name, documents, problems))
        for document in documents:
            _load_document(document, item.name, resources, diagnostics)
    diagnostics.extend(_duplicates(resources))
    for resource in resources:
        diagnostics.extend(validate.validate_resource(resource))
        diagnostics.extend(_config_canary_documents(resource))
    return LoadResult(tuple(resources), Diagnostics.of(diagnostics))


def _config_canary_documents(resource: Resource[BaseModel]) -> list[Diagnostic]:
    """A config canary's changed documents, each loaded as an object of its own (the schema and
    every rule of its kind), then checked against the canary's target: CM0609 at its index."""
    spec = resource.spec
    if not isinstance(spec, Canary) or spec.config is None:
        return []
    report = Reporter(resource)
    for index, document in enumerate(spec.config.resources):
        if config_kind_problem(document) is not None:
            continue  # said by validate_canary, from the Canary alone
        loaded = load_text(json.dumps(document), "<config canary>")
        problems = [f"{d.field or ''} {d.reason}".strip() for d in loaded.diagnostics.items
                    if d.level == "error"]  # fmt: skip
        if not problems:
            problems = (
                config_spec_problems(loaded.resources[0].spec, spec.target.host)
                if loaded.resources
                else [f"{document.get('kind')} does not load"]
            )
        for problem in problems:
            report("CM0609", (*RESOURCES, index), problem=problem)
    return report.found


def _refused(item: Input, problem: InputProblem) -> Diagnostic:
    """The one diagnostic of a refused input, naming the object and field at its line when
    what could be read of it says."""
    label, field = None, None
    if problem.code == "CM0701":
        label = peek_label(item.text)
    elif problem.line > 0:
        documents, _ = parse_documents(item.text)
        holding = [d for d in documents if d.line <= problem.line]
        if holding and isinstance(holding[-1].data, dict):
            document = holding[-1]
            label = raw_label(holding[-1].data)
            here = [path for path, line in document.field_lines.items() if line == problem.line]
            field = format_path(max(here, key=len)) if here else None
    return make(problem.code, file=item.name, line=problem.line, resource=label, field=field,
                **problem.args)  # fmt: skip


def _load_document(
    document: YamlDocument,
    filename: str,
    resources: list[Resource[BaseModel]],
    diagnostics: list[Diagnostic],
) -> None:
    source = Source(filename, document.index, document.line)
    data = document.data
    if not isinstance(data, dict):
        got = "a list" if isinstance(data, list) else f"the scalar {render_value(data)}"
        diagnostics.append(make("CM0003", file=filename, line=document.line, got=got))
        return
    if data.get("kind") == "List" and data.get("apiVersion") == "v1":
        _load_list(data, document, filename, resources, diagnostics)
        return
    limits = object_problems(data)
    if limits:
        label = raw_label(data)
        for problem in limits:
            line = line_of(document.field_lines, problem.path, document.line)
            value = None if problem.value is None else render_value(problem.value)
            diagnostics.append(
                make(problem.code, file=filename, line=line, resource=label,
                     field=format_path(problem.path) or None, value=value, **problem.args)
            )  # fmt: skip
        return
    decoded = _decode(data, document.field_lines, source, diagnostics)
    if decoded is not None:
        resources.append(decoded)


def _load_list(
    data: dict[str, object],
    document: YamlDocument,
    filename: str,
    resources: list[Resource[BaseModel]],
    diagnostics: list[Diagnostic],
) -> None:
    items = data.get("items", [])
    if not isinstance(items, list):
        line = document.field_lines.get(("items",), document.line)
        diagnostics.append(make("CM0011", file=filename, line=line, field="items"))
        return
    for index, item in enumerate(items):
        prefix: FieldPath = ("items", index)
        lines = {
            path[2:]: line
            for path, line in document.field_lines.items()
            if path[:2] == prefix and len(path) > 2
        }
        line = document.field_lines.get(prefix, document.line)
        sub = YamlDocument(document.index, line, item, lines)
        _load_document(sub, filename, resources, diagnostics)


def _decode(
    data: dict[str, object],
    lines: dict[FieldPath, int],
    source: Source,
    diagnostics: list[Diagnostic],
) -> Resource[BaseModel] | None:
    """Type one manifest, or report why it cannot be typed and return None."""
    label = raw_label(data)
    at = _Where(source, lines, label, diagnostics)
    info = _kind_info(data, at)
    if info is None:
        return None
    metadata = _metadata(data, lines, source, label, diagnostics)
    typed = _spec(info, data, lines, source, label, diagnostics)
    if metadata is None:
        return None
    api_version = info.api_version_of(data)
    if not info.local_mesh:
        at.report("CM0012", "kind", show=False, kind=info.kind, api_version=api_version)
    if typed.spec is None:
        if typed.repaired is not None:
            rest = Resource(api_version, info.kind, metadata, typed.repaired, source, lines)
            diagnostics.extend(_outside(validate.validate_resource(rest), typed.removed))
        return None
    return Resource(api_version, info.kind, metadata, typed.spec, source, lines)


def _outside(found: list[Diagnostic], removed: tuple[FieldPath, ...]) -> list[Diagnostic]:
    """The diagnostics that are not about (a parent or child of) a removed field."""
    removed_paths = [format_path(path) for path in removed]

    def related(field: str | None) -> bool:
        return field is not None and any(
            field == path or path.startswith(field + ".") or path.startswith(field + "[")
            or field.startswith(path + ".") or field.startswith(path + "[")
            for path in removed_paths
        )  # fmt: skip

    return [d for d in found if not related(d.field)]


@dataclass(frozen=True, slots=True)
class _Where:
    """Where a document's diagnostics go, and how to find a top-level field's line."""

    source: Source
    lines: dict[FieldPath, int]
    label: str | None
    diagnostics: list[Diagnostic]

    def report(
        self, code: str, key: str, value: str | None = None, *, show: bool = True, **args: str
    ) -> None:
        """Report at the line of top-level ``key``, naming it as the field when ``show``."""
        line = self.lines.get((key,), self.source.line)
        self.diagnostics.append(
            make(code, file=self.source.file, line=line, resource=self.label,
                 field=key if show else None, value=value, **args)
        )  # fmt: skip


def _kind_info(data: dict[str, object], at: _Where) -> KindInfo | None:
    """The schema of the document's apiVersion and kind, or None after reporting why not."""
    api_version, kind = data.get("apiVersion"), data.get("kind")
    missing = False
    for key, value in (("apiVersion", api_version), ("kind", kind)):
        if not isinstance(value, str) or not value:
            at.report("CM0004", key, None if value is None else render_value(value))
            missing = True
    if missing or not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group, version = split_api_version(api_version)
    info = lookup(group, kind)
    if info is None:
        if group in KNOWN_UNSUPPORTED and kind not in KNOWN_UNSUPPORTED[group]:
            at.report("CM0006", "kind", kind=kind, group=group or "core")
        elif group == ARGO_GROUP and kind in ARGO_KINDS:
            _argo_problems(data, kind, at)  # apply translates the rest (cli/inputs.py)
        else:
            # Skipping a kind that routes or secures traffic changes behaviour: warn; others: note.
            code = "CM0008" if group in TRAFFIC_GROUPS else "CM0012"
            at.report(code, "kind", show=False, kind=kind, api_version=api_version)
        return None
    if version not in info.versions:
        versions = ", ".join(info.api_versions())
        at.report("CM0007", "apiVersion", render_value(api_version), kind=kind,
                  api_version=api_version, versions=versions)  # fmt: skip
        return None
    return info


def _argo_problems(data: dict[str, object], kind: str, at: _Where) -> None:
    """CM0611 for each field of an Argo Rollout or analysis template the mesh cannot run."""
    meta = data.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return  # CM0005 says so
    document = {**data, "metadata": {"namespace": "default", **meta}}
    try:
        if kind == "Rollout":
            refused = rollout_problems(document)
        else:
            refused = analysis_template_refusals(kind, document)
    except ConfigError:
        return
    for refusal in refused:
        path = parse_path(refusal.path)
        line = line_of(at.lines, path, at.source.line)
        at.diagnostics.append(
            make("CM0611", file=at.source.file, line=line, resource=at.label,
                 field=refusal.path, problem=refusal.problem)
        )  # fmt: skip


def _metadata(
    data: dict[str, object],
    lines: dict[FieldPath, int],
    source: Source,
    label: str | None,
    diagnostics: list[Diagnostic],
) -> ObjectMeta | None:
    raw = data.get("metadata")
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        field: FieldPath = ("metadata", "name") if isinstance(raw, dict) else ("metadata",)
        line = lines.get(field, lines.get(("metadata",), source.line))
        diagnostics.append(
            make("CM0005", file=source.file, line=line, resource=label, field=format_path(field))
        )
        return None
    try:
        return ObjectMeta.model_validate(raw)
    except ValidationError as exc:
        diagnostics.extend(schema_diagnostics(exc, raw, ("metadata",), lines, source, label))
        return None


@dataclass(frozen=True, slots=True)
class _Typed:
    """The typed spec, or (after schema errors) the spec typed without the bad fields."""

    spec: BaseModel | None
    repaired: BaseModel | None = None
    removed: tuple[FieldPath, ...] = ()


def _spec(
    info: KindInfo,
    data: dict[str, object],
    lines: dict[FieldPath, int],
    source: Source,
    label: str | None,
    diagnostics: list[Diagnostic],
) -> _Typed:
    if info.strict_top_level:
        for key in data:
            if key not in _ISTIO_TOP_LEVEL:
                line = lines.get((key,), source.line)
                diagnostics.append(
                    make("CM0101", file=source.file, line=line, resource=label, field=key,
                         api_group=info.group)
                )  # fmt: skip
    prefix: FieldPath
    if info.body == "top":
        raw: object = {k: v for k, v in data.items() if k not in ("apiVersion", "kind", "metadata")}
        prefix = ()
    else:
        raw = data.get("spec", {})
        prefix = ("spec",)
        if raw is None:
            raw = {}
    try:
        return _Typed(info.model.model_validate(raw))
    except ValidationError as exc:
        diagnostics.extend(schema_diagnostics(exc, raw, prefix, lines, source, label, info.group))
        repair = without_bad_fields(exc, raw)
    if repair is None:
        return _Typed(None)
    repaired_raw, removed = repair
    try:
        repaired = info.model.model_validate(repaired_raw)
    except ValidationError:
        return _Typed(None)
    return _Typed(None, repaired, tuple((*prefix, *path) for path in removed))


def _duplicates(resources: Sequence[Resource[BaseModel]]) -> list[Diagnostic]:
    # The API group is part of the identity: Istio's Gateway and the Gateway API's Gateway
    # can share a name (Bookinfo's two bookinfo-gateway files do).
    seen: dict[tuple[str, str, str, str], Resource[BaseModel]] = {}
    found: list[Diagnostic] = []
    for resource in resources:
        identity = (split_api_version(resource.api_version)[0], *resource.key)
        first = seen.get(identity)
        if first is not None:
            label = f"{resource.kind} {resource.display_name}"
            found.append(
                make("CM0009", file=resource.source.file, line=resource.source.line,
                     resource=label, first=str(first.source))
            )  # fmt: skip
        seen[identity] = resource
    return found
