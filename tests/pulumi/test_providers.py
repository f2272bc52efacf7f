"""Layer 1: each provider's check/create/read/diff/update/delete called directly against a real
registry (auth on), as the engine's dynamic-provider host calls them, refusals included."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from pulumi.dynamic import Config, ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider

from modelyard.client.admin import AdminClient, ApiError
from modelyard.client.auth import password_login, store_refresh_token
from modelyard.pulumi import ModelyardError
from modelyard.pulumi.compartments import (
    CompartmentConfigurationProvider,
    CompartmentProvider,
    RegistryConfigurationProvider,
)
from modelyard.pulumi.gcp.artifactregistry import (
    ArtifactRepositoryProvider,
    RepositoryIamBindingProvider,
    RepositoryIamMemberProvider,
)
from modelyard.pulumi.gcp.container import ContainerRegistryProvider
from modelyard.pulumi.gcp.storage import BucketIAMBindingProvider, BucketIAMMemberProvider
from modelyard.pulumi.iam import IamBindingProvider, IamMemberProvider, IamPolicyProvider
from modelyard.pulumi.oci.artifacts import ContainerConfigurationProvider, ContainerRepositoryProvider
from modelyard.pulumi.principals import ServiceAccountKeyProvider, ServiceAccountProvider, UserProvider
from modelyard.pulumi.provider import RegistryProvider
from modelyard.pulumi.repositories import RepositoryProvider, readme
from modelyard.schemas import admin as schemas
from tests.auth.support import ADMIN_PASSWORD
from tests.pulumi.conftest import Registry


def configured(kind: type[RegistryProvider], registry: Registry, **config: str) -> RegistryProvider:
    provider = kind()
    raw = config or {"modelyard:url": registry.url, "modelyard:apiKey": registry.admin_key}
    provider.configure(ConfigureRequest(Config(raw_config=raw, project_name="project")))
    return provider


def checked(provider: RegistryProvider, news: dict[str, Any], olds: dict[str, Any] | None = None) -> dict[str, Any]:
    result = provider.check(olds or {}, news)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return result.inputs


def failures(provider: RegistryProvider, news: dict[str, Any]) -> dict[str, str]:
    return {f.property: f.reason for f in provider.check({}, news).failures}


def test_repository_create_read_diff_update_delete(registry: Registry) -> None:
    registry.admin.create_compartment(schemas.CompartmentCreate(name="crud"))
    provider = configured(RepositoryProvider, registry)
    props = checked(provider, {"compartment": "crud", "display_name": "llm", "is_immutable": True,
                               "readme": readme("# LLM"), "labels": {"team": "ml"},
                               "immutable_tag_patterns": ["v*"], "url": None})  # fmt: skip
    assert "url" not in props, "an output's placeholder is not an input"

    created = provider.create(props)
    assert created.id == "crud/llm"
    outs = created.outs or {}
    assert outs["url"] == f"{registry.host}/crud/llm"
    assert (outs["is_immutable"], outs["is_public"], outs["labels"]) == (True, False, {"team": "ml"})
    assert base64.b64decode(outs["readme"]["content"]) == b"# LLM"
    assert (outs["image_count"], outs["layers_size_in_bytes"], outs["created_by"]) == (0, 0, "user:admin")

    read = provider.read("crud/llm", {})
    assert read.id == "crud/llm" and read.outs == outs
    assert read.inputs is not None and read.inputs["display_name"] == "llm"

    same = provider.diff("crud/llm", outs, props)
    assert same.changes is False and same.replaces == []
    in_place = provider.diff("crud/llm", outs, {**props, "description": "weights", "labels": {"team": "ai"}})
    assert in_place.changes is True and in_place.replaces == []
    renamed = provider.diff("crud/llm", outs, {**props, "display_name": "llm2"})
    assert renamed.changes is True and renamed.replaces == ["display_name"]
    moved = provider.diff("crud/llm", outs, {**props, "compartment": "other"})
    assert moved.replaces == ["compartment"]

    updated = provider.update("crud/llm", outs, {**props, "description": "weights", "is_public": True})
    assert (updated.outs or {})["description"] == "weights"
    live = registry.admin.get_repository("crud/llm")
    assert (live.description, live.is_public, live.is_immutable) == ("weights", True, True)

    provider.delete("crud/llm", updated.outs or {})
    with pytest.raises(ApiError) as gone:
        registry.admin.get_repository("crud/llm")
    assert gone.value.status == 404
    assert provider.read("crud/llm", {}).id == "", "read of a deleted resource: no id, so the engine drops it"
    provider.delete("crud/llm", {})  # deleting what is gone already is done


def test_check_refuses_unknown_arguments_and_bad_values_before_any_call(registry: Registry) -> None:
    repository = configured(RepositoryProvider, registry)
    refused = failures(repository, {"display_name": "llm", "colour": "red"})
    assert "colour" in refused and "has no argument 'colour'" in refused["colour"]
    assert "display_name" in refused["colour"], "the message lists the arguments it takes"
    assert "lowercase" in failures(repository, {"display_name": "LLM"})["display_name"]
    assert "base64" in failures(repository, {"display_name": "a", "readme": {"content": "not base64!"}})["readme"]
    assert "must be bool" in failures(repository, {"display_name": "a", "is_public": "yes"})["is_public"]
    assert "required" in failures(repository, {"compartment": "acme"})["display_name"]
    assert "root compartment" in failures(repository, {"display_name": "a/b"})["display_name"]
    assert "unknown role" in failures(repository, {"display_name": "a", "protected_aliases": [
        {"alias": "prod", "roles": ["owner"]}]})["protected_aliases"]  # fmt: skip

    binding = configured(IamBindingProvider, registry)
    reason = failures(binding, {"role": "owner", "members": ["user:alice"]})["role"]
    assert "unknown role 'owner'" in reason and "reader, pusher, writer, repoAdmin, admin" in reason
    assert "not a member" in failures(binding, {"role": "reader", "members": ["alice"]})["members"]
    assert "not both" in failures(binding, {"role": "reader", "members": ["allUsers"], "repository": "a/b",
                                            "compartment": "a"})["compartment"]  # fmt: skip
    policy = configured(IamPolicyProvider, registry)
    assert (
        "unknown role" in failures(policy, {"bindings": [{"role": "god", "members": ["allUsers"]}]})["bindings[0].role"]
    )

    oci = configured(ContainerRepositoryProvider, registry)
    tags = failures(oci, {"compartment_id": "acme", "display_name": "llm", "defined_tags": {"ns.k": "v"}})
    assert "not supported by modelyard" in tags["defined_tags"] and "freeform_tags" in tags["defined_tags"]
    gcp_binding = configured(BucketIAMBindingProvider, registry)
    roles = failures(gcp_binding, {"bucket": "artifacts.p.appspot.com", "role": "roles/owner", "members": ["allUsers"]})
    assert "roles/owner" in roles["role"] and "roles/storage.objectViewer" in roles["role"]
    condition = failures(gcp_binding, {"bucket": "b", "role": "roles/storage.objectViewer", "members": ["allUsers"],
                                       "condition": {"title": "t", "expression": "true"}})  # fmt: skip
    assert "conditions" in condition["condition"]
    assert "domain:acme.com" in failures(gcp_binding, {"bucket": "b", "role": "roles/storage.objectViewer",
                                                       "members": ["domain:acme.com"]})["members"]  # fmt: skip
    artifact = configured(ArtifactRepositoryProvider, registry)
    maven = failures(artifact, {"repository_id": "r", "project": "p", "format": "MAVEN", "kms_key_name": "k"})
    assert "DOCKER" in maven["format"] and "customer keys" in maven["kms_key_name"]
    # Nothing reached the registry.
    assert [c.name for c in registry.admin.iter_compartments() if c.name in ("acme", "p")] == []


def test_refusals_of_the_registry_are_clear_errors(registry: Registry) -> None:
    provider = configured(RepositoryProvider, registry)
    with pytest.raises(
        ModelyardError, match=r"ghost/llm create: NOT_FOUND \(404\): compartment 'ghost' does not exist"
    ):
        provider.create({"compartment": "ghost", "display_name": "llm"})
    registry.admin.create_compartment(schemas.CompartmentCreate(name="dupe"))
    provider.create({"compartment": "dupe", "display_name": "llm"})
    with pytest.raises(ModelyardError, match="already exists"):
        provider.create({"compartment": "dupe", "display_name": "llm"})

    registry.admin.create_service_account(schemas.ServiceAccountCreate(name="nobody@refusals"))
    weak = registry.admin.create_api_key("serviceAccount:nobody@refusals", schemas.ApiKeyCreate()).secret
    outsider = configured(RepositoryProvider, registry, **{"modelyard:url": registry.url, "modelyard:apiKey": weak})
    with pytest.raises(ModelyardError, match=r"dupe/other create: .*\(403\)"):
        outsider.create({"compartment": "dupe", "display_name": "other"})
    unreachable = configured(RepositoryProvider, registry, **{"modelyard:url": "http://127.0.0.1:9",
                                                             "modelyard:apiKey": weak})  # fmt: skip
    with pytest.raises(ModelyardError, match="cannot reach the registry"):
        unreachable.create({"compartment": "dupe", "display_name": "other"})


def test_compartment_and_the_create_on_first_push_settings(registry: Registry) -> None:
    compartments = configured(CompartmentProvider, registry)
    created = compartments.create(checked(compartments, {"name": "team", "description": "Team",
                                                         "is_repository_created_on_first_push": False}))  # fmt: skip
    assert created.id == "team" and (created.outs or {})["is_repository_created_on_first_push"] is False
    diff = compartments.diff("team", created.outs or {}, {"name": "team2"})
    assert diff.replaces == ["name"] and diff.delete_before_replace is True
    news = {"name": "team", "description": "The team", "is_repository_created_on_first_push": True}
    updated = compartments.update("team", created.outs or {}, news)
    assert (updated.outs or {})["description"] == "The team"
    assert registry.admin.get_compartment_configuration("team").is_repository_created_on_first_push is True

    configs = configured(CompartmentConfigurationProvider, registry)
    made = configs.create({"compartment": "team", "is_repository_created_on_first_push": False})
    assert (made.outs or {})["effective_is_repository_created_on_first_push"] is False
    configs.delete("team", {})
    assert registry.admin.get_compartment_configuration("team").is_repository_created_on_first_push is None

    defaults = configured(RegistryConfigurationProvider, registry)
    before = registry.admin.get_configuration()
    applied = defaults.create({"is_compartment_created_on_first_push": not before.is_compartment_created_on_first_push})
    assert applied.id == "registry"
    after = registry.admin.get_configuration()
    assert after.is_compartment_created_on_first_push is not before.is_compartment_created_on_first_push
    assert after.is_repository_created_on_first_push is before.is_repository_created_on_first_push, "left alone"
    assert defaults.read("registry", {}).outs == after.model_dump()
    registry.admin.set_configuration(before)

    compartments.delete("team", {})
    assert compartments.read("team", {}).id == ""


def test_iam_binding_member_and_policy_each_own_their_part(registry: Registry) -> None:
    registry.admin.create_compartment(schemas.CompartmentCreate(name="iam"))
    registry.admin.create_repository(schemas.RepositoryCreate(compartment_id="iam", display_name="r"))
    member = configured(IamMemberProvider, registry)
    one = member.create(checked(member, {"repository": "iam/r", "role": "reader", "member": "user:carol"}))
    assert one.id == "repository:iam/r reader user:carol"

    binding = configured(IamBindingProvider, registry)
    made = binding.create(checked(binding, {"repository": "iam/r", "role": "pusher", "members": ["user:alice"]}))
    assert made.id == "repository:iam/r pusher"
    bindings = {b.role: b.members for b in registry.admin.get_policy(repository="iam/r").bindings}
    assert bindings == {"reader": ["user:carol"], "pusher": ["user:alice"]}, "the member's role is left alone"

    binding.update(made.id, made.outs or {}, {"repository": "iam/r", "role": "pusher", "members": ["user:bob"]})
    assert binding.read(made.id, {}).outs == {"repository": "iam/r", "compartment": None, "role": "pusher",
                                              "members": ["user:bob"]}  # fmt: skip
    live = binding.read(made.id, {}).outs or {}
    assert binding.diff(made.id, live, {"members": ["user:bob"], "role": "pusher"}).changes is False
    assert binding.diff(made.id, live, {"members": ["user:bob", "user:eve"], "role": "pusher"}).replaces == []

    member.delete(one.id, {})
    assert member.read(one.id, {}).id == ""
    assert binding.read(made.id, {}).id == made.id, "removing a member leaves the other role's binding"

    policy = configured(IamPolicyProvider, registry)
    two = [{"role": "writer", "members": ["group:ml"]}, {"role": "reader", "members": ["allAuthenticatedUsers"]}]
    whole = policy.create(checked(policy, {"compartment": "iam", "bindings": two}))
    assert whole.id == "compartment:iam"
    assert {b.role for b in registry.admin.get_policy(compartment="iam").bindings} == {"writer", "reader"}
    policy.update(
        whole.id, whole.outs or {}, {"compartment": "iam", "bindings": [{"role": "reader", "members": ["allUsers"]}]}
    )
    assert [(b.role, b.members) for b in registry.admin.get_policy(compartment="iam").bindings] == [
        ("reader", ["allUsers"])
    ]
    policy.delete(whole.id, {})
    assert registry.admin.get_policy(compartment="iam").bindings == []
    binding.delete(made.id, {})
    assert registry.admin.get_policy(repository="iam/r").bindings == []


def test_users_service_accounts_and_keys(registry: Registry) -> None:
    users = configured(UserProvider, registry)
    user = users.create(checked(users, {"name": "dana", "email": "dana@acme.com", "password": "first-Pa55word"}))
    assert user.id == "dana" and (user.outs or {})["member"] == "user:dana@acme.com"
    with AdminClient(registry.url, auth=httpx.BasicAuth("dana", "first-Pa55word")) as dana:
        assert dana.me().name == "dana"
    assert users.diff("dana", user.outs or {}, {"name": "dana", "email": "dana@acme.com",
                                                "password": "second-Pa55word"}).replaces == []  # fmt: skip
    users.update("dana", user.outs or {}, {"name": "dana", "email": "dana@acme.com", "password": "second-Pa55word"})
    with AdminClient(registry.url, auth=httpx.BasicAuth("dana", "second-Pa55word")) as dana:
        assert dana.me().name == "dana"
    assert (users.read("dana", {"password": "second-Pa55word"}).outs or {})["password"] == "second-Pa55word"

    accounts = configured(ServiceAccountProvider, registry)
    account = accounts.create({"name": "ci@keys", "description": "CI"})
    keys = configured(ServiceAccountKeyProvider, registry)
    key = keys.create(checked(keys, {"service_account": "ci@keys", "expires_in_days": 30}))
    secret = (key.outs or {})["secret"]
    with AdminClient(registry.url, auth=httpx.BasicAuth("ci@keys", secret)) as ci:
        assert ci.me().subject == "serviceAccount:ci@keys"
    read = keys.read(key.id, {"secret": secret, "service_account": "ci@keys"})
    assert read.id == key.id and (read.outs or {})["time_expires"] is not None
    keys.delete(key.id, {})
    assert keys.read(key.id, {}).id == "", "a revoked key is gone"
    with AdminClient(registry.url, auth=httpx.BasicAuth("ci@keys", secret)) as ci, pytest.raises(ApiError):
        ci.me()

    accounts.delete(account.id, {})
    users.delete(user.id, {})
    assert accounts.read(account.id, {}).id == "" and users.read(user.id, {}).id == ""


def test_connection_comes_from_config_then_environment_then_the_login_store(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.admin.create_compartment(schemas.CompartmentCreate(name="conn"))
    # Stack config wins over the environment.
    monkeypatch.setenv("MODELYARD_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MODELYARD_API_KEY", "myd_wrong")
    from_config = configured(CompartmentProvider, registry)
    assert from_config.read("conn", {}).id == "conn"
    # The environment, when the stack config has nothing.
    monkeypatch.setenv("MODELYARD_URL", registry.url)
    monkeypatch.setenv("MODELYARD_API_KEY", registry.admin_key)
    from_env = CompartmentProvider()
    from_env.configure(ConfigureRequest(Config(raw_config={}, project_name="project")))
    assert from_env.read("conn", {}).id == "conn"
    # The `modelyard login` store (the last registry logged in to, its refresh token).
    monkeypatch.delenv("MODELYARD_URL")
    monkeypatch.delenv("MODELYARD_API_KEY")
    store_refresh_token(registry.url, "admin", password_login(registry.url, "admin", ADMIN_PASSWORD))
    from_store = CompartmentProvider()
    from_store.configure(ConfigureRequest(Config(raw_config={}, project_name="project")))
    assert from_store.read("conn", {}).id == "conn"

    # What Pulumi serialises into the state is the provider's class, never the connection.
    blob = base64.b64decode(serialize_provider(from_config))
    assert registry.admin_key.encode() not in blob and registry.url.encode() not in blob
    assert b"CompartmentProvider" in blob


def test_oci_shapes_map_compartment_ids_and_display_names(registry: Registry) -> None:
    oci = configured(ContainerRepositoryProvider, registry)
    props = checked(oci, {"compartment_id": "ocid1.compartment.oc1..ociteam", "display_name": "Team/LLM-Serving",
                          "is_immutable": True, "freeform_tags": {"cost": "ml"}, "readme": readme("# hi")})  # fmt: skip
    created = oci.create(props)
    assert created.id == "ociteam/team/llm-serving"
    outs = created.outs or {}
    assert (outs["display_name"], outs["compartment_id"]) == ("Team/LLM-Serving", "ocid1.compartment.oc1..ociteam")
    assert outs["url"] == f"{registry.host}/ociteam/team/llm-serving" and outs["state"] == "AVAILABLE"
    live = registry.admin.get_repository("ociteam/team/llm-serving")
    assert (live.labels, live.is_immutable, live.display_name) == ({"cost": "ml"}, True, "team/llm-serving")
    assert oci.diff(created.id, outs, props).changes is False, "the display form is no change"
    assert oci.diff(created.id, outs, {**props, "compartment_id": "ociteam"}).changes is False, "OCID or name"
    assert oci.diff(created.id, outs, {**props, "display_name": "other"}).replaces == ["display_name"]
    assert (oci.read(created.id, props).outs or {})["display_name"] == "Team/LLM-Serving"
    updated = oci.update(created.id, outs, {**props, "is_public": True, "freeform_tags": {"cost": "ai"}})
    assert (updated.outs or {})["freeform_tags"] == {"cost": "ai"} and registry.admin.get_repository(
        created.id
    ).is_public

    config = configured(ContainerConfigurationProvider, registry)
    config.create({"compartment_id": "ocid1.compartment.oc1..ociteam", "is_repository_created_on_first_push": False})
    assert registry.admin.get_compartment_configuration("ociteam").is_repository_created_on_first_push is False
    before = registry.admin.get_configuration()
    tenancy = config.create({"compartment_id": "ocid1.tenancy.oc1..acme", "is_repository_created_on_first_push": False})
    assert tenancy.id == "ocid1.tenancy.oc1..acme"
    assert registry.admin.get_configuration().is_repository_created_on_first_push is False, "the tenancy: the registry"
    registry.admin.set_configuration(before)
    oci.delete(created.id, {})
    assert oci.read(created.id, props).id == ""


def test_gcp_shapes_map_projects_buckets_and_roles(registry: Registry) -> None:
    gcr = configured(ContainerRegistryProvider, registry)
    made = gcr.create(checked(gcr, {"project": "gcp-proj", "location": "EU"}))
    assert made.id == "eu.artifacts.gcp-proj.appspot.com"
    assert (made.outs or {})["repository_url"] == f"{registry.host}/gcp-proj"
    assert registry.admin.get_compartment_configuration("gcp-proj").is_repository_created_on_first_push is True
    assert gcr.read(made.id, {}).outs == made.outs

    binding = configured(BucketIAMBindingProvider, registry)
    bound = binding.create({"bucket": made.id, "role": "roles/storage.objectViewer", "members": ["user:erin"]})
    assert bound.id == "b/eu.artifacts.gcp-proj.appspot.com roles/storage.objectViewer"
    policy = registry.admin.get_policy(compartment="gcp-proj")
    assert [(b.role, b.members) for b in policy.bindings] == [("reader", ["user:erin"])]
    assert (binding.read(bound.id, {}).outs or {})["members"] == ["user:erin"]
    member = configured(BucketIAMMemberProvider, registry)
    added = member.create({"bucket": "gcp-proj", "role": "roles/storage.admin", "member": "group:ops"})
    assert {b.role for b in registry.admin.get_policy(compartment="gcp-proj").bindings} == {"reader", "admin"}
    member.delete(added.id, {})
    binding.delete(bound.id, {})
    assert registry.admin.get_policy(compartment="gcp-proj").bindings == []

    artifacts = configured(ArtifactRepositoryProvider, registry)
    props = checked(artifacts, {"repository_id": "models", "project": "gcp-proj", "location": "us-central1",
                                "format": "DOCKER", "docker_config": {"immutable_tags": True},
                                "labels": {"env": "prod"}})  # fmt: skip
    repo = artifacts.create(props)
    assert repo.id == "projects/gcp-proj/locations/us-central1/repositories/models"
    assert (repo.outs or {})["registry_uri"] == f"{registry.host}/gcp-proj/models"
    assert registry.admin.get_repository("gcp-proj/models").is_immutable is True
    assert (artifacts.read(repo.id, {}).outs or {})["docker_config"] == {"immutable_tags": True}
    iam = configured(RepositoryIamMemberProvider, registry)
    iam.create({"repository": repo.id, "role": "roles/artifactregistry.writer", "member": "user:erin"})
    assert [(b.role, b.members) for b in registry.admin.get_policy(repository="gcp-proj/models").bindings] == [
        ("writer", ["user:erin"])
    ]
    repo_binding = configured(RepositoryIamBindingProvider, registry)
    short = {"repository": "models", "project": "gcp-proj", "role": "roles/artifactregistry.reader",
             "members": ["allAuthenticatedUsers"]}  # fmt: skip
    bound_repo = repo_binding.create(checked(repo_binding, short))
    assert bound_repo.id == "models roles/artifactregistry.reader"
    assert ("reader", ["allAuthenticatedUsers"]) in [
        (b.role, b.members) for b in registry.admin.get_policy(repository="gcp-proj/models").bindings
    ]
    assert (repo_binding.read(bound_repo.id, {"project": "gcp-proj"}).outs or {})["members"] == [
        "allAuthenticatedUsers"
    ]
    repo_binding.delete(bound_repo.id, short)
    assert "reader" not in {b.role for b in registry.admin.get_policy(repository="gcp-proj/models").bindings}
    no_project = failures(repo_binding, {**short, "project": None})
    assert "no project" in no_project["repository"]
    artifacts.delete(repo.id, {})
    assert artifacts.read(repo.id, {}).id == ""
    gcr.delete(made.id, {"project": "gcp-proj"})
    assert registry.admin.get_compartment_configuration("gcp-proj").is_repository_created_on_first_push is None
