"""``/api/v1/models`` (search) and a version's model view and files:
``/api/v1/repositories/{repository}/-/versions/{reference}[/files[/{path}]]``.

Versions sit behind ``/-/`` like the versions list (``repositories.py``): a repository name can
contain ``versions`` but never ``-`` alone as a component. A repository the caller may not read
answers like a missing one (``Call.require``); search shows only versions of repositories the
caller may read, a page always ending on one it may see (``filtered_page``).
"""

from __future__ import annotations

import re

from aiohttp import web

from modelyard.api.admin import files, views
from modelyard.api.admin.framework import LIMIT, PAGE_NUMBER, Call, Operation, QueryParam, validation_error
from modelyard.domain.models import ModelQuery, ModelVersionRecord, parse_params
from modelyard.policy.authorizer import Permission
from modelyard.schemas import models as schemas
from modelyard.services.listing import filtered_page

# A parameter count as the query takes it ("7B", "1.5b", "350M", "1000"; empty: no bound).
COUNT = r"^([0-9]{1,15}(\.[0-9]{1,6})?[kmbgtqKMBGTQ]?)?$"
# "int4", "uint8", "4bit", "4-bit", "fp8", "4": a width, matched by bits; anything else by name.
_BITS = re.compile(r"^(?:u?int|fp|float)?(\d{1,2})(?:-?bits?)?$")


async def get_version(call: Call) -> schemas.ModelVersion:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    return views.model_version(await call.registry.models.version(name, call.path("reference")))


async def list_files(call: Call) -> schemas.ModelFileList:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    record = await call.registry.models.version(name, call.path("reference"))
    return schemas.ModelFileList(items=[views.model_file(f) for f in record.facts.files])


async def get_file(call: Call) -> web.StreamResponse:
    name = call.path("repository")
    await call.require(Permission.PULL, "repository", name)
    access = await call.registry.models.file(name, call.path("reference"), call.path("path"))
    return await files.respond(call.request, access, call.registry.models)


def _params(call: Call, field: str) -> int | None:
    raw = call.query_str(field)
    if raw is None:
        return None
    if re.match(COUNT, raw) is None:
        raise validation_error([(field, f"not a parameter count: {raw[:40]!r} (use e.g. 7B, 1.5B, 350M or 1000)")])
    return min(parse_params(raw), 2**63 - 1)  # the column's range: a larger bound is no bound


def _query(call: Call) -> ModelQuery:
    def lower(field: str) -> str | None:
        value = call.query_str(field)
        return value.strip().lower()[:255] if value and value.strip() else None

    quantization = lower("quantization")
    bits = None
    if quantization is not None and (match := _BITS.match(quantization)):
        bits = int(match.group(1))
    return ModelQuery(
        architecture=lower("arch"),
        quantization=quantization,
        quant_bits=bits,
        license=lower("license"),
        format=lower("format"),
        min_params=_params(call, "min_params"),
        max_params=_params(call, "max_params"),
        text=lower("q"),
    )


async def search_models(call: Call) -> schemas.ModelSearchPage:
    limit = call.limit()
    query = _query(call)
    page = call.page_number()
    models = call.registry.models
    readable: dict[str, bool] = {}

    def visible(record: ModelVersionRecord) -> bool:  # runs off the loop, with the page's reads
        if record.repository not in readable:
            readable[record.repository] = call.can_now(Permission.PULL, "repository", record.repository)
        return readable[record.repository]

    records, more = await call.registry.read(
        filtered_page,
        lambda size, last: models.search(query, size, None if last is None else int(last)),
        limit,
        None if page is None else str(page),
        visible,
        lambda record: str(record.id),
    )
    return schemas.ModelSearchPage(
        items=[views.model_search_result(r) for r in records], next_page=str(records[-1].id) if more else None
    )


VERSION = "/api/v1/repositories/{repository:.+}/-/versions/{reference}"
TAG = "models"
SEARCH = (
    QueryParam("arch", "string", "Architecture, e.g. llama (case-insensitive)."),
    QueryParam("quantization", "string", "A quantization (q4_k_m, gptq, awq) or a width: int4, 8bit, fp8."),
    QueryParam("license", "string", "SPDX identifier, e.g. apache-2.0 (case-insensitive)."),
    QueryParam("min_params", "string", "At least this many parameters: 7B, 1.5b, 350M or a number.", pattern=COUNT),
    QueryParam("max_params", "string", "At most this many parameters.", pattern=COUNT),
    QueryParam("format", "string", "safetensors, gguf, onnx, pt, ..."),
    QueryParam("q", "string", "A prefix of the repository or model name."),
)

OPERATIONS = [
    Operation("GET", "/api/v1/models", "searchModels", "Search model versions across readable repositories", TAG,
              search_models, response=schemas.ModelSearchPage, query=(*SEARCH, LIMIT, PAGE_NUMBER), errors=(422,)),
    Operation("GET", VERSION + "/files/{path:.+}", "getModelFile", "Download one file of a version (Range, ETag)",
              TAG, get_file, raw_response="application/octet-stream", errors=(404,)),
    Operation("GET", VERSION + "/files", "listModelFiles", "List the files of a version", TAG, list_files,
              response=schemas.ModelFileList, errors=(404,)),
    Operation("GET", VERSION, "getModelVersion", "Get a version: model facts, model card excerpt and files", TAG,
              get_version, response=schemas.ModelVersion, errors=(404,)),
]  # fmt: skip
