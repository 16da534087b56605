"""Base classes and strict scalar types shared by every input schema in :mod:`canarymesh.api`.

Pure. Two families, because the upstream schemas differ:

* :class:`IstioModel` forbids unknown fields, as Istio's CRD schemas do (a typo such as
  ``weigth`` is refused by the API server, so we refuse it too).
* :class:`KubeModel` keeps unknown fields: we model only what the local mesh uses of Kubernetes
  objects, and a real manifest (probes, securityContext, volumes...) must still load.

Scalars are strict: YAML ``weight: "50"`` is a string, and the Kubernetes API server refuses it
where an integer is expected, so pydantic must not coerce it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

__all__ = [
    "Bool",
    "Duration",
    "Int",
    "IntOrStr",
    "IstioModel",
    "JsonObject",
    "KubeModel",
    "Labels",
    "Number",
    "Str",
    "Strs",
]

Int = StrictInt
Str = StrictStr
Bool = StrictBool
# JSON numbers: an integer is a valid value for a ``number`` field (``percentage: {value: 100}``).
Number = StrictFloat
Strs = tuple[StrictStr, ...]
Labels = dict[StrictStr, StrictStr]
# Kubernetes IntOrString (``targetPort: 9080`` or ``targetPort: http``).
IntOrStr = Annotated[StrictInt | StrictStr, Field(union_mode="left_to_right")]


def _duration_text(value: object) -> object:
    # ``timeout: 7`` is a YAML number: say "not a duration" rather than "not a string".
    if not isinstance(value, str):
        raise PydanticCustomError("duration_type", "a duration must be text such as 7s")
    return value


# A duration as written (``7s``, ``100ms``); its syntax is checked by validation.
Duration = Annotated[StrictStr, BeforeValidator(_duration_text)]
# Parts of Istio's API we accept and pass through but do not interpret (see each use).
JsonObject = dict[StrictStr, object]


class IstioModel(BaseModel):
    """An Istio (or Canary Mesh) message: camelCase aliases, unknown fields refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class KubeModel(BaseModel):
    """A Kubernetes object part: camelCase aliases, unknown fields kept (``model_extra``).

    A field written as null is unset, as the API server reads it (``args:`` with nothing after
    it is common in real manifests)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=True,
    )

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: object) -> object:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data
