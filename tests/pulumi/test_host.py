"""The providers in Pulumi's own dynamic-provider host (``python -m pulumi.dynamic``), over gRPC.

This is the process the Pulumi engine starts for dynamic resources: it unpickles the
``__provider`` blob with dill in a process that never ran the program, configures it with the
stack config the engine sends (``Configure``), and serves Check/Diff/Create/Read/Update/Delete.
Talking to it as the engine does shows that the blob is self-sufficient (the class imports from
the installed package, no credentials ride along) and that every answer survives the host's own
(de)serialisation.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from modelyard.pulumi.provider import RegistryProvider
from modelyard.pulumi.repositories import RepositoryProvider, readme
from modelyard.schemas import admin as schemas
from tests.pulumi.conftest import Registry

URN = "urn:pulumi:dev::project::pulumi-python:dynamic/modelyard:Repository::llm"


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def plain(message: struct_pb2.Struct) -> dict[str, Any]:
    return json_format.MessageToDict(message)


@pytest.fixture
def host() -> Iterator[provider_pb2_grpc.ResourceProviderStub]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pulumi.dynamic"], stdout=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "PULUMI_PROJECT": "project"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield provider_pb2_grpc.ResourceProviderStub(channel)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_engines_dynamic_provider_host_runs_the_providers(
    registry: Registry, host: provider_pb2_grpc.ResourceProviderStub
) -> None:
    registry.admin.create_compartment(schemas.CompartmentCreate(name="hosted"))
    host.Configure(provider_pb2.ConfigureRequest(args=struct({"modelyard:url": registry.url,
                                                              "modelyard:apiKey": registry.admin_key})))  # fmt: skip
    blob = serialize_provider(RepositoryProvider())
    news = {"compartment": "hosted", "display_name": "llm", "is_immutable": True, "readme": readme("# hosted"),
            "url": None, "__provider": blob}  # fmt: skip

    refused = host.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct({**news, "colour": "red"})))
    assert [(f.property, "has no argument 'colour'" in f.reason) for f in refused.failures] == [("colour", True)]
    checked = host.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=struct(news)))
    assert list(checked.failures) == []
    inputs = plain(checked.inputs)
    assert "url" not in inputs and inputs["__provider"] == blob

    created = host.Create(provider_pb2.CreateRequest(urn=URN, properties=checked.inputs))
    outs = plain(created.properties)
    assert created.id == "hosted/llm" and outs["url"] == f"{registry.host}/hosted/llm" and outs["is_immutable"]
    assert registry.admin.get_repository("hosted/llm").is_immutable

    diff = host.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties,
                                              news=struct({**inputs, "display_name": "llm2"})))  # fmt: skip
    assert diff.changes == provider_pb2.DiffResponse.DIFF_SOME and list(diff.replaces) == ["display_name"]
    same = host.Diff(provider_pb2.DiffRequest(id=created.id, urn=URN, olds=created.properties, news=checked.inputs))
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE

    updated = host.Update(provider_pb2.UpdateRequest(id=created.id, urn=URN, olds=created.properties,
                                                     news=struct({**inputs, "description": "served"})))  # fmt: skip
    assert plain(updated.properties)["description"] == "served"

    registry.admin.update_repository("hosted/llm", schemas.RepositoryUpdate(is_public=True))
    read = host.Read(provider_pb2.ReadRequest(id=created.id, urn=URN, properties=updated.properties))
    assert read.id == "hosted/llm" and plain(read.properties)["is_public"] is True, "refresh sees the change"

    host.Delete(provider_pb2.DeleteRequest(id=created.id, urn=URN, properties=read.properties))
    gone = host.Read(provider_pb2.ReadRequest(id=created.id, urn=URN, properties=read.properties))
    assert gone.id == "", "deleted outside: no id, so the engine drops it and the next up creates it"

    with pytest.raises(grpc.RpcError) as failed:
        host.Create(provider_pb2.CreateRequest(urn=URN, properties=struct({**inputs, "compartment": "ghost"})))
    assert "compartment 'ghost' does not exist" in str(failed.value)


def every_provider() -> list[type[RegistryProvider]]:
    import modelyard.pulumi.gcp
    import modelyard.pulumi.oci  # noqa: F401  (the cloud shapes register their providers too)

    found: list[type[RegistryProvider]] = []
    pending = [RegistryProvider]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.ARGS:
                found.append(sub)
    return sorted(set(found), key=lambda kind: kind.TYPE)


def test_every_provider_unpickles_and_checks_in_the_host(host: provider_pb2_grpc.ResourceProviderStub) -> None:
    kinds = every_provider()
    assert {kind.TYPE.split(":", 1)[0] for kind in kinds} == {"modelyard", "oci", "gcp"}
    assert len(kinds) == 19, [kind.TYPE for kind in kinds]  # 11 native, 2 OCI, 6 GCP shapes
    host.Configure(provider_pb2.ConfigureRequest(args=struct({})))
    for kind in kinds:
        news = struct({"__provider": serialize_provider(kind()), "bogus": 1})
        failures = host.Check(provider_pb2.CheckRequest(urn=URN, olds=struct({}), news=news)).failures
        reasons = {f.property: f.reason for f in failures}
        assert reasons["bogus"].startswith(f"{kind.TYPE} has no argument 'bogus'"), (kind, reasons)
