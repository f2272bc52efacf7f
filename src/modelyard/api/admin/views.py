"""Records -> API models."""

from __future__ import annotations

import base64

from modelyard.domain import mediatypes
from modelyard.domain.records import CompartmentRecord, RepositoryDetails, VersionRecord
from modelyard.schemas import admin as schemas


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
        image_count=record.image_count,
        layer_count=record.layer_count,
        layers_size_in_bytes=record.layers_size_in_bytes,
        time_created=record.created_at,
        time_last_pushed=record.time_last_pushed,
        created_by=record.created_by,
        lifecycle_state="AVAILABLE",
    )


def version(record: VersionRecord, immutable: bool) -> schemas.Version:
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
    )
