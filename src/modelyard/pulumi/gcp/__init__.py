"""``pulumi_gcp``'s registry resources, on modelyard: change ``import pulumi_gcp as gcp`` to
``import modelyard.pulumi.gcp as gcp`` and ``gcp.config.project``/``zone``/``region``,
``gcp.container.Registry`` (and ``get_registry_repository``), ``gcp.storage.BucketIAMBinding``/
``BucketIAMMember`` and ``gcp.artifactregistry.Repository``/``RepositoryIamBinding``/
``RepositoryIamMember`` run against the registry in stack config ``modelyard:url``.

What maps, predictably:

- A GCP project is a compartment (created when missing). A ``container.Registry`` makes its
  project's compartment create repositories on first push, as Container Registry does; its id is
  the bucket name (``artifacts.PROJECT.appspot.com``, ``eu.artifacts.…`` with a location), which
  ``storage.BucketIAMBinding(bucket=registry.id, …)`` takes (or a plain project name). Its
  ``repository_url`` (also from ``get_registry_repository``) is ``HOST/PROJECT``.
- ``artifactregistry.Repository`` is repository ``PROJECT/REPOSITORY_ID`` (format ``DOCKER``;
  ``docker_config.immutable_tags`` is immutability); ``registry_uri`` is what ``docker push`` takes.
- Roles: ``roles/storage.objectViewer``, ``roles/storage.legacyBucketReader`` and
  ``roles/artifactregistry.reader`` are ``reader``; ``roles/storage.objectCreator`` and
  ``roles/artifactregistry.createOnPushWriter`` ``pusher``; ``roles/storage.legacyBucketWriter`` and
  ``roles/artifactregistry.writer`` ``writer``; ``roles/storage.objectAdmin`` and
  ``roles/artifactregistry.repoAdmin`` ``repoAdmin``; ``roles/storage.admin`` and
  ``roles/artifactregistry.admin`` ``admin``. Any other role, a ``condition``, a member kind
  modelyard lacks (``domain:``, ``projectOwner:``, …) or an argument ``pulumi_gcp`` does not have is
  an error at preview.
- Members are modelyard's: ``user:EMAIL`` (a user with that email), ``serviceAccount:NAME`` (a
  service account may be named ``ci@proj.iam.gserviceaccount.com``), ``group:``, ``allUsers``,
  ``allAuthenticatedUsers``.
"""

from modelyard.pulumi.gcp import artifactregistry, config, container, storage

__all__ = ["artifactregistry", "config", "container", "storage"]
