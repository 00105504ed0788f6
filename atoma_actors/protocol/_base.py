"""The base model of every wire message: camelCase on the wire, snake_case in Python.

Must not import anything else from atoma_actors.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["LenientModel", "WireModel"]


class WireModel(BaseModel):
    """Strict wire model: unknown fields are refused, values are immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=False,
    )

    def to_wire(self) -> dict:
        """The JSON-ready camelCase dict of this model (fields left unset are omitted)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class LenientModel(WireModel):
    """Wire model that keeps fields it does not know (meta blocks grow over versions)."""

    model_config = ConfigDict(extra="allow")
