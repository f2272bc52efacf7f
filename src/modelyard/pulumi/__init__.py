"""modelyard as Pulumi resources: a dynamic provider in Python, nothing else to install.

Native resources (this module): :class:`Compartment`, :class:`CompartmentConfiguration`,
:class:`RegistryConfiguration`, :class:`Repository`, :class:`IamPolicy`, :class:`IamBinding`,
:class:`IamMember`, :class:`User`, :class:`ServiceAccount`, :class:`ServiceAccountKey` and
:class:`Alias`. Cloud-shaped modules map onto them: :mod:`modelyard.pulumi.oci` (as
``pulumi_oci``) and :mod:`modelyard.pulumi.gcp` (as ``pulumi_gcp``), so a program written for
those runs here with its import line changed.

The registry and credentials come from stack config (``modelyard:url``, ``modelyard:apiKey`` as
a secret), else ``MODELYARD_URL``/``MODELYARD_API_KEY``, else the ``modelyard login`` store; they
never enter the state. This module is a client: it talks to ``/api/v1`` and loads no server code,
and nothing else in modelyard imports it (``import modelyard`` stays free of Pulumi).
"""

from modelyard.pulumi.aliases import Alias
from modelyard.pulumi.compartments import Compartment, CompartmentConfiguration, RegistryConfiguration
from modelyard.pulumi.iam import IamBinding, IamMember, IamPolicy
from modelyard.pulumi.principals import ServiceAccount, ServiceAccountKey, User
from modelyard.pulumi.provider import ModelyardError
from modelyard.pulumi.repositories import Repository, readme

__all__ = [
    "Alias",
    "Compartment",
    "CompartmentConfiguration",
    "IamBinding",
    "IamMember",
    "IamPolicy",
    "ModelyardError",
    "RegistryConfiguration",
    "Repository",
    "ServiceAccount",
    "ServiceAccountKey",
    "User",
    "readme",
]
