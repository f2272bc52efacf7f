"""``pulumi_oci``'s container-registry resources, on modelyard: change ``import pulumi_oci as oci``
to ``import modelyard.pulumi.oci as oci`` and ``oci.artifacts.ContainerRepository``,
``oci.artifacts.ContainerRepositoryReadmeArgs`` and ``oci.artifacts.ContainerConfiguration`` run
against the registry in stack config ``modelyard:url``.

What maps, predictably:

- ``compartment_id``: a tenancy OCID (``ocid1.tenancy.…``) is the root compartment; a compartment
  OCID (``ocid1.compartment.oc1..acme``) names the compartment after its last ``.``-component
  (``acme``); anything else is the compartment's name. A compartment that does not exist yet is
  created (OCI's exist before their repositories) and kept when the resource goes.
- ``display_name``: the repository path is its lowercase form (``Team/LLM`` → ``team/llm``); the
  ``display_name`` output keeps the form the program gave.
- ``freeform_tags`` are the repository's labels; ``defined_tags`` are refused (modelyard has no tag
  namespaces), as is any argument ``pulumi_oci`` does not have.
- ``ContainerConfiguration`` on the tenancy is the registry-wide default; on a compartment, that
  compartment's setting (deleting it goes back to inheriting).
- Outputs add ``url`` (what ``docker push`` takes): export it instead of building
  ``{region}.ocir.io/{namespace}/{name}``; ``namespace`` is the registry's host.
"""

from modelyard.pulumi.oci import artifacts

__all__ = ["artifacts"]
