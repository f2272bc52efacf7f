"""How a resource class hands its arguments to its provider (shared by native and cloud shapes)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi.dynamic

from modelyard.pulumi.provider import RegistryProvider


def props_for(provider: RegistryProvider, args: dict[str, Any]) -> dict[str, Any]:
    """The resource's inputs: every argument given, and a ``None`` placeholder for every other
    argument and output so the program can read each as an attribute (the dynamic-resource
    convention; ``check`` drops the placeholders). Unknown arguments are passed on too:
    ``check`` names them at preview."""
    props: dict[str, Any] = dict.fromkeys([*provider.ARGS, *provider.OUTPUTS])
    props.update({key: value for key, value in args.items() if value is not None})
    return props


def secret_options(opts: pulumi.ResourceOptions | None, secrets: list[str]) -> pulumi.ResourceOptions | None:
    """``opts`` plus ``additional_secret_outputs``: the engine encrypts those outputs in the state."""
    if not secrets:
        return opts
    return pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=secrets))


class RegistryResource(pulumi.dynamic.Resource):
    """A dynamic resource backed by one of modelyard's providers."""

    PROVIDER: type[RegistryProvider] = RegistryProvider
    SECRET_OUTPUTS: list[str] = []

    def __init__(self, resource_name: str, args: dict[str, Any], opts: pulumi.ResourceOptions | None = None) -> None:
        provider = self.PROVIDER()
        super().__init__(provider, resource_name, props_for(provider, args), secret_options(opts, self.SECRET_OUTPUTS))
