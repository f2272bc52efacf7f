"""A Pulumi program written for Google's Container Registry (``pulumi_gcp``), run against
modelyard: the import line is the only change. The README's "Declare it in Pulumi" shows it."""

import pulumi

import modelyard.pulumi.gcp as gcp  # noqa: PLR0402  (was: import pulumi_gcp as gcp)

project = gcp.config.project
ci_member = pulumi.Config().require("ciMember")

registry = gcp.container.Registry("registry", project=project, location="EU")

gcp.storage.BucketIAMBinding(
    "registry-pushers",
    bucket=registry.id,
    role="roles/storage.objectAdmin",
    members=[ci_member],
)

repository = gcp.container.get_registry_repository_output(project=project, region="eu")
pulumi.export("registry_url", repository.repository_url)
pulumi.export("bucket", registry.id)
