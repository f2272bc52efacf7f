"""Typed HTTP clients for modelyard (shared by the CLI, the SDK, the UI and the Pulumi provider)."""

from modelyard.client.admin import AdminClient, ApiError, RegistryUnreachableError

__all__ = ["AdminClient", "ApiError", "RegistryUnreachableError"]
