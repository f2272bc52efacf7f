"""Records -> API models."""

from __future__ import annotations

import base64

from modelyard.domain import mediatypes
from modelyard.domain.models import ModelFacts, ModelFile, ModelVersionRecord, format_params
from modelyard.domain.records import CompartmentRecord, RepositoryDetails, VersionRecord
from modelyard.schemas import admin as schemas
from modelyard.schemas import models as model_schemas


def compartment(record: CompartmentRecord) -> schemas.Compartment:
    return schemas.Compartment(
        id=record.name,
        name=record.name,
        description=record.description,
        repository_count=record.repository_count,
        time_created=record.created_at,
        time_updated=record.updated_at,
    )


def repository(record: RepositoryDetails, host: str) -> schemas.Repository:
    settings = record.settings
    return schemas.Repository(
        id=str(record.id),
        name=record.name,
        compartment_id=record.compartment,
        display_name=record.display_name,
        url=f"{host}/{record.name}",
        description=settings.description,
        is_public=settings.is_public,
        is_immutable=settings.is_immutable,
        immutable_tag_patterns=list(settings.immutable_tag_patterns),
        mutable_tag_exclusions=list(settings.mutable_tag_exclusions),
        readme=schemas.Readme(
            content=base64.b64encode(settings.readme_content.encode()).decode(),
            format="TEXT_PLAIN" if settings.readme_format == "TEXT_PLAIN" else "TEXT_MARKDOWN",
        ),
        labels=dict(settings.labels),
        protected_aliases=[
            schemas.ProtectedAlias(alias=r.alias, roles=list(r.roles), members=list(r.members))
            for r in settings.protected_aliases
        ],
        promotion_gates=[
            schemas.PromotionGate(
                alias=g.alias,
                required_referrer_types=list(g.required_referrer_types),
                require_alias_first=g.require_alias_first,
            )
            for g in settings.promotion_gates
        ],
        image_count=record.image_count,
        layer_count=record.layer_count,
        layers_size_in_bytes=record.layers_size_in_bytes,
        time_created=record.created_at,
        time_last_pushed=record.time_last_pushed,
        created_by=record.created_by,
        lifecycle_state="AVAILABLE",
    )


def version(record: VersionRecord, immutable: bool, model: ModelVersionRecord | None = None) -> schemas.Version:
    return schemas.Version(
        tag=record.tag,
        digest=record.digest,
        media_type=record.media_type,
        # A plain image's referrer type is its config's media type; as a version's "artifact
        # type" that would only say "an image", so it is left out.
        artifact_type=None if record.artifact_type in mediatypes.IMAGE_CONFIGS else record.artifact_type,
        size=record.size,
        annotations=dict(record.annotations or {}),
        time_created=record.created_at,
        time_tagged=record.tagged_at,
        immutable=immutable,
        model=None if model is None else model_summary(model.facts),
    )


def _summary_fields(facts: ModelFacts) -> dict[str, object]:
    return {
        "packaging": facts.packaging,
        "status": facts.status,
        "reason": facts.reason,
        "format": facts.format,
        "name": facts.name,
        "architecture": facts.architecture,
        "parameters": facts.parameters,
        "parameters_human": format_params(facts.parameters),
        "precision": facts.precision,
        "quantization": facts.quantization,
        "quant_bits": facts.quant_bits,
        "license": facts.license,
        "context_length": facts.context_length,
        "total_size": facts.total_size,
        "file_count": facts.file_count,
    }


def model_summary(facts: ModelFacts) -> model_schemas.ModelSummary:
    return model_schemas.ModelSummary.model_validate(_summary_fields(facts))


def model_file(file: ModelFile) -> model_schemas.ModelFileInfo:
    return model_schemas.ModelFileInfo(
        path=file.path,
        size=file.size,
        digest=file.layer_digest,
        media_type=file.media_type,
        kind=file.kind,
        archive=file.archive,
        layer_index=file.layer_index,
    )


def model_version(record: ModelVersionRecord) -> model_schemas.ModelVersion:
    return model_schemas.ModelVersion.model_validate(
        {
            **_summary_fields(record.facts),
            "repository": record.repository,
            "digest": record.digest,
            "media_type": record.media_type,
            "tags": list(record.tags),
            "time_created": record.created_at,
            "time_indexed": record.indexed_at,
            "card": record.facts.card,
            "details": record.facts.details,
            "files": [model_file(f) for f in record.facts.files],
        }
    )


def model_search_result(record: ModelVersionRecord) -> model_schemas.ModelSearchResult:
    return model_schemas.ModelSearchResult.model_validate(
        {
            **_summary_fields(record.facts),
            "repository": record.repository,
            "digest": record.digest,
            "tags": list(record.tags),
            "time_created": record.created_at,
        }
    )
