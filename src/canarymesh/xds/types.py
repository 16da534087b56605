"""The one alias for Envoy output: proto3-JSON as plain dicts. Imported by every ``xds`` module."""

from __future__ import annotations

from typing import TypeAlias

JsonValue: TypeAlias = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
EnvoyJson: TypeAlias = dict[str, JsonValue]


def typed(type_name: str, body: EnvoyJson) -> EnvoyJson:
    """An ``Any``-typed config: ``{"@type": "type.googleapis.com/<type_name>", ...body}``."""
    return {"@type": f"type.googleapis.com/{type_name}", **body}


def duration(value: str | None) -> str | None:
    """An Istio duration (``7s``, ``0.5s``, ``100ms``, ``1m``, ``1h``) as proto3 JSON seconds."""
    if value is None:
        return None
    units = (("ms", 0.001), ("us", 0.000001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, factor in units:
        if value.endswith(suffix):
            number = float(value[: -len(suffix)]) * factor
            text = f"{number:.6f}".rstrip("0").rstrip(".")
            return (text or "0") + "s"
    raise ValueError(f"not a duration: {value!r}")
