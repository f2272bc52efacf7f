"""The tensor index of a safetensors file of a version:
``…/-/versions/{reference}/files/{path}/tensors`` lists every tensor (name, dtype, shape, byte
range in the file) and ``…/tensors/{name}`` answers one tensor's bytes, a ranged read of the
blob, so a loader fetches one layer of a 70 GB checkpoint without the rest.

The routes are tried before ``…/files/{path}`` (``models.py``) and only match a path ending in
``.safetensors``: a file of another name ending in ``/tensors`` is still served as a file.
The same permission as the file: a repository the caller may not read answers like a missing one.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from modelyard.api.admin.framework import Call, Operation
from modelyard.policy.authorizer import Permission
from modelyard.schemas import tensors as schemas

VERSION = "/api/v1/repositories/{repository:.+}/-/versions/{reference}"
FILE = VERSION + r"/files/{path:.+\.safetensors}"
TAG = "models"


async def list_tensors(call: Call) -> schemas.TensorList:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    access, entries = await call.registry.models.tensors(name, call.path("reference"), call.path("path"))
    return schemas.TensorList(
        path=access.file.path,
        digest=access.digest,
        items=[schemas.TensorInfo(name=e.name, dtype=e.dtype, shape=list(e.shape), start=e.start, end=e.end)
               for e in entries],
    )  # fmt: skip


async def get_tensor(call: Call) -> web.StreamResponse:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    models = call.registry.models
    access, entry = await models.tensor(name, call.path("reference"), call.path("path"), call.path("tensor"))
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/octet-stream",
            "Cache-Control": "private, max-age=0, must-revalidate",
            # The bytes of a tensor of a file never change: the layer digest and the range name them.
            "ETag": f'"{access.file.layer_digest}:{entry.start}-{entry.end}"',
            "X-Tensor-Dtype": entry.dtype,
            "X-Tensor-Shape": ",".join(str(d) for d in entry.shape),
            "X-Tensor-Offsets": f"{entry.start}-{entry.end}",  # [start, end) in the file
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(entry.name)}",
        }
    )
    response.content_length = entry.end - entry.start
    await response.prepare(call.request)
    if call.request.method != "HEAD":
        async for piece in models.read(access, entry.start, entry.end):
            await response.write(piece)
    await response.write_eof()
    return response


OPERATIONS = [
    Operation("GET", FILE + "/tensors/{tensor:.+}", "getModelTensor",
              "Download one tensor of a safetensors file (its bytes, dtype and shape in headers)", TAG, get_tensor,
              raw_response="application/octet-stream", errors=(404,)),
    Operation("GET", FILE + "/tensors", "listModelTensors",
              "List the tensors of a safetensors file: names, dtypes, shapes and byte ranges", TAG, list_tensors,
              response=schemas.TensorList, errors=(404,)),
]  # fmt: skip
