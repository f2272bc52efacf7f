"""Typed HTTP clients for modelyard (shared by the CLI, the SDK, the UI and the Pulumi provider)."""

from modelyard.client.admin import AdminClient, ApiError, RegistryUnreachableError
from modelyard.client.oci import Credentials, OciClient

__all__ = ["AdminClient", "ApiError", "Credentials", "OciClient", "RegistryUnreachableError"]
