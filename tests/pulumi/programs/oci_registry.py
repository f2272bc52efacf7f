"""A Pulumi program written for Oracle's registry (``pulumi_oci``), run against modelyard: the
import line is the only change. The README's "Declare it in Pulumi" shows it."""

import base64

import pulumi

import modelyard.pulumi.oci as oci  # noqa: PLR0402  (was: import pulumi_oci as oci)

config = pulumi.Config()
compartment_id = config.require("compartmentId")

# Pushing to a repository that does not exist yet creates it, in this compartment.
oci.artifacts.ContainerConfiguration(
    "container-configuration",
    compartment_id=compartment_id,
    is_repository_created_on_first_push=True,
)

repository = oci.artifacts.ContainerRepository(
    "serving-repository",
    compartment_id=compartment_id,
    display_name="Llama-Serving",
    is_immutable=True,
    is_public=False,
    readme=oci.artifacts.ContainerRepositoryReadmeArgs(
        content=base64.b64encode(b"# Llama serving\n\nImages of the serving stack, one tag per release.").decode(),
        format="TEXT_MARKDOWN",
    ),
    freeform_tags={"team": "ml", "tier": "serving"},
)

pulumi.export("repository_url", repository.url)
pulumi.export("repository_id", repository.id)
