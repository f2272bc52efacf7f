"""The admin API's models of the tensor index of a safetensors file
(``GET /api/v1/repositories/{name}/-/versions/{ref}/files/{path}/tensors``).

Shared by the server and the clients like ``schemas/models.py``. Byte ranges are absolute offsets
in the file, so a loader that has the file's URL can read one tensor with a ``Range`` request of
its own, or ask for ``.../tensors/{name}``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TensorInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    dtype: str = Field(description="The safetensors dtype code: F32, F16, BF16, I8, U8, F8_E4M3, ...")
    shape: list[int]
    start: int = Field(description="Offset of the tensor's first byte in the file.")
    end: int = Field(description="Offset just past its last byte (end - start bytes).")


class TensorList(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    digest: str = Field(description="The manifest digest of the version.")
    items: list[TensorInfo]
