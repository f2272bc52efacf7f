"""Integer fields as JSON Schema reads them: ``7090.0`` is an integer, ``false`` is not (pydantic's
lax mode would take ``false`` as 0, its strict mode would refuse ``7090.0``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be an integer, not true or false")
    return value


Integer = Annotated[int, BeforeValidator(_no_bool)]
