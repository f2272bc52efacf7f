"""Layer 2: whole Pulumi programs through the SDK's mock runtime and the engine of
``tests/pulumi/runner.py``, against a live registry (auth on): the OCI-shaped and GCP-shaped
programs of the README with skopeo pushing to the URLs they export, preview refusals, updates
and replacements, drift, import, and secrets kept out of the state."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest

import modelyard.pulumi as my
from modelyard.client.admin import ApiError
from modelyard.pulumi import oci
from modelyard.pulumi.gcp import container, storage
from modelyard.schemas import admin as schemas
from tests.interop.layouts import Layout, build_image
from tests.interop.test_skopeo import Skopeo
from tests.pulumi.conftest import Registry
from tests.pulumi.runner import CheckFailed, Engine, program_file

PROGRAMS = Path(__file__).parent / "programs"
OCI_PROGRAM = program_file(PROGRAMS / "oci_registry.py")
GCP_PROGRAM = program_file(PROGRAMS / "gcp_registry.py")


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    path = shutil.which("skopeo")
    if path is None:
        pytest.fail("skopeo is not installed: run scripts/bootstrap --system (it installs Debian's skopeo)")
    return Skopeo(path, tmp_path)


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    images = Layout(tmp_path / "layout")
    images.add_image("one", build_image([2048]))
    images.add_image("two", build_image([1024]))
    return images


def push(skopeo: Skopeo, layout: Layout, tag: str, dest: str, creds: str | None) -> str:
    """skopeo copy to ``docker://dest``; the output when refused, "" when it landed."""
    auth = [f"--dest-creds={creds}"] if creds else ["--dest-no-creds"]
    result = skopeo.run("copy", "--quiet", "--dest-tls-verify=false", *auth, f"oci:{layout.path}:{tag}",
                        f"docker://{dest}", check=False)  # fmt: skip
    return "" if result.returncode == 0 else " ".join((result.stdout + result.stderr).split())


def member_with_key(registry: Registry, account: str, grant: Callable[[my.ServiceAccount], None] | None = None) -> str:
    """A service account and its key declared with the native resources; the key comes back as an
    exported secret."""

    def program() -> None:
        sa = my.ServiceAccount("ci", name=account, description="CI pipeline")
        key = my.ServiceAccountKey("ci-key", service_account=sa.name)
        if grant is not None:
            grant(sa)
        pulumi.export("key", key.secret)

    result = registry.engine().up(program)
    assert result.secret_outputs == {"key"}, "the key is a secret output"
    return str(result.outputs["key"])


def outsider(registry: Registry, name: str) -> str:
    registry.admin.create_service_account(schemas.ServiceAccountCreate(name=name))
    return registry.admin.create_api_key(f"serviceAccount:{name}", schemas.ApiKeyCreate()).secret


def test_oci_program_declares_an_immutable_private_repository_that_its_member_pushes_to(
    registry: Registry, skopeo: Skopeo, layout: Layout
) -> None:
    engine = registry.engine(**{"project:compartmentId": "ocid1.compartment.oc1..ocie2e"})
    planned = engine.preview(OCI_PROGRAM)
    assert planned.ops("create") == ["container-configuration", "serving-repository"]
    with pytest.raises(ApiError):
        registry.admin.get_compartment("ocie2e")  # a preview changes nothing

    result = engine.up(OCI_PROGRAM)
    url = result.outputs["repository_url"]
    assert url == f"{registry.host}/ocie2e/llama-serving"
    assert result.outputs["repository_id"] == "ocie2e/llama-serving"
    live = registry.admin.get_repository("ocie2e/llama-serving")
    assert (live.is_immutable, live.is_public, live.labels) == (True, False, {"team": "ml", "tier": "serving"})
    assert live.readme.format == "TEXT_MARKDOWN" and live.readme.text().startswith("# Llama serving")
    assert registry.admin.get_compartment_configuration("ocie2e").is_repository_created_on_first_push is True

    def grant(sa: my.ServiceAccount) -> None:
        my.IamMember("ci-pushes", repository="ocie2e/llama-serving", role="pusher", member=sa.member)

    key = member_with_key(registry, "ci@ocie2e", grant)
    assert push(skopeo, layout, "one", f"{url}:v1", f"ci@ocie2e:{key}") == ""
    assert [v.tag for v in registry.admin.iter_versions("ocie2e/llama-serving")] == ["v1"]
    refused = push(skopeo, layout, "two", f"{url}:v1", f"ci@ocie2e:{key}")
    assert "v1" in refused and "immutable" in refused.lower(), refused
    stranger = outsider(registry, "stranger@ocie2e")
    assert push(skopeo, layout, "two", f"{url}:v2", f"stranger@ocie2e:{stranger}") != ""
    assert push(skopeo, layout, "two", f"{url}:v2", None) != "", "a private repository refuses anonymous pushes"
    assert [v.tag for v in registry.admin.iter_versions("ocie2e/llama-serving")] == ["v1"]

    again = engine.up(OCI_PROGRAM)
    assert again.ops("same") == ["container-configuration", "serving-repository"], "a second up changes nothing"


def test_gcp_program_declares_a_registry_whose_bound_member_pushes_and_others_are_refused(
    registry: Registry, skopeo: Skopeo, layout: Layout
) -> None:
    member = "ci@acme-ml.iam.gserviceaccount.com"  # a modelyard service account may bear a GCP-style name
    key = member_with_key(registry, member)
    engine = registry.engine(**{"gcp:project": "acme-ml", "project:ciMember": f"serviceAccount:{member}"})
    result = engine.up(GCP_PROGRAM)
    assert result.outputs == {"registry_url": f"{registry.host}/acme-ml", "bucket": "eu.artifacts.acme-ml.appspot.com"}
    policy = registry.admin.get_policy(compartment="acme-ml")
    assert [(b.role, b.members) for b in policy.bindings] == [("repoAdmin", [f"serviceAccount:{member}"])]

    url = result.outputs["registry_url"]
    assert push(skopeo, layout, "one", f"{url}/llm:v1", f"{member}:{key}") == ""
    created = registry.admin.get_repository("acme-ml/llm")
    assert created.image_count == 1 and created.created_by == f"serviceAccount:{member}", "created on first push"
    stranger = outsider(registry, "stranger@acme-ml")
    assert push(skopeo, layout, "two", f"{url}/llm:v2", f"stranger@acme-ml:{stranger}") != ""
    assert push(skopeo, layout, "two", f"{url}/other:v1", f"stranger@acme-ml:{stranger}") != ""
    assert [v.tag for v in registry.admin.iter_versions("acme-ml/llm")] == ["v1"]

    # The binding is the program's: a new member list updates it in place.
    engine.config["project:ciMember"] = "group:ml-ci"
    changed = engine.up(GCP_PROGRAM)
    assert changed.ops("update") == ["registry-pushers"] and changed.ops("same") == ["registry"]
    assert push(skopeo, layout, "two", f"{url}/llm:v2", f"{member}:{key}") != "", "no longer bound"
    engine.destroy()
    assert registry.admin.get_policy(compartment="acme-ml").bindings == []
    assert registry.admin.get_repository("acme-ml/llm").image_count == 1, "destroying the registry keeps images"


def test_an_unknown_role_or_argument_fails_the_preview_and_nothing_is_created(registry: Registry) -> None:
    def bad_role() -> None:
        registry_ = container.Registry("registry", project="preview-only")
        storage.BucketIAMBinding("owners", bucket=registry_.id, role="roles/owner", members=["user:alice"])

    with pytest.raises(CheckFailed) as failed:
        registry.engine().preview(bad_role)
    assert failed.value.failures[0][0] == "role" and "roles/owner" in failed.value.failures[0][1]

    def bad_argument() -> None:
        oci.artifacts.ContainerRepository("repo", compartment_id="preview-only", display_name="x", colour="red")

    with pytest.raises(CheckFailed, match="colour") as failed:
        registry.engine().up(bad_argument)
    assert "ContainerRepository 'repo'" in str(failed.value)
    with pytest.raises(ApiError):
        registry.admin.get_compartment("preview-only")


def test_updates_in_place_replacements_on_rename_and_removal(registry: Registry) -> None:
    spec: dict[str, Any] = {"description": "one", "name": "model", "keep": True}

    def program() -> None:
        compartment = my.Compartment("team", name="lifecycle")
        if spec["keep"]:
            my.Repository("repo", compartment=compartment.name, display_name=spec["name"],
                          description=spec["description"])  # fmt: skip

    engine = registry.engine()
    assert engine.up(program).ops("create") == ["repo", "team"]
    spec["description"] = "two"
    assert engine.up(program).ops("update") == ["repo"]
    assert registry.admin.get_repository("lifecycle/model").description == "two"
    spec["name"] = "model-v2"
    renamed = engine.up(program)
    assert renamed.ops("replace") == ["repo"]
    assert [step.changes for step in renamed.steps if step.op == "replace"] == [["display_name"]]
    assert registry.admin.get_repository("lifecycle/model-v2").description == "two"
    with pytest.raises(ApiError):
        registry.admin.get_repository("lifecycle/model")
    spec["keep"] = False
    assert engine.up(program).ops("delete") == ["repo"]
    assert registry.admin.get_compartment("lifecycle").repository_count == 0
    engine.destroy()


def test_drift_changed_outside_shows_on_refresh_and_deleted_outside_is_recreated(registry: Registry) -> None:
    def program() -> None:
        compartment = my.Compartment("team", name="drift")
        my.Repository("repo", compartment=compartment.name, display_name="llm", description="declared",
                      is_public=False, labels={"owner": "ml"})  # fmt: skip

    engine = registry.engine()
    engine.up(program)
    registry.admin.update_repository("drift/llm", schemas.RepositoryUpdate(description="edited", is_public=True))
    drift = engine.refresh()
    assert drift["repo"] == ["description", "is_public"]
    assert drift["team"] == ["repository_count"], "statistics are refreshed too (0 when it was created)"
    restored = engine.up(program)
    assert restored.ops("update") == ["repo"]
    live = registry.admin.get_repository("drift/llm")
    assert (live.description, live.is_public) == ("declared", False)

    registry.admin.delete_repository("drift/llm")
    assert engine.refresh()["repo"] == ["deleted"]
    assert engine.up(program).ops("create") == ["repo"]
    assert registry.admin.get_repository("drift/llm").labels == {"owner": "ml"}

    registry.admin.delete_repository("drift/llm")
    assert engine.up(program, refresh=True).ops("create") == ["repo"], "pulumi up --refresh"
    engine.destroy()


def test_import_by_id_adopts_what_exists(registry: Registry) -> None:
    registry.admin.create_compartment(schemas.CompartmentCreate(name="adopt"))
    registry.admin.create_repository(
        schemas.RepositoryCreate(compartment_id="adopt", display_name="old", description="made by hand")
    )

    def program(description: str) -> Callable[[], None]:
        def run() -> None:
            repo = my.Repository("old", compartment="adopt", display_name="old", description=description,
                                 opts=pulumi.ResourceOptions(import_="adopt/old"))  # fmt: skip
            existing = oci.artifacts.ContainerRepository("read-only", compartment_id="adopt", display_name="old",
                                                         opts=pulumi.ResourceOptions(id="adopt/old"))  # fmt: skip
            pulumi.export("url", repo.url)
            pulumi.export("seen", existing.display_name)

        return run

    with pytest.raises(ValueError, match="differ from the imported resource"):
        registry.engine().up(program("something else"))
    engine = registry.engine()
    imported = engine.up(program("made by hand"))
    assert imported.ops("import") == ["old"] and imported.ops("read") == ["read-only"]
    assert imported.outputs == {"url": f"{registry.host}/adopt/old", "seen": "old"}
    assert engine.up(program("made by hand")).ops("same") == ["old"]
    assert engine.up(program("now managed")).ops("update") == ["old"]
    assert registry.admin.get_repository("adopt/old").description == "now managed"
    engine.destroy()
    with pytest.raises(ApiError):
        registry.admin.get_repository("adopt/old")


def test_credentials_and_secrets_never_land_in_the_state_in_the_clear(registry: Registry) -> None:
    def program() -> None:
        user = my.User("frank", name="frank", email="frank@acme.com", password="frank-Pa55word")
        sa = my.ServiceAccount("bot", name="bot@secrets")
        key = my.ServiceAccountKey("bot-key", service_account=sa.name, description="deploys")
        pulumi.export("key", key.secret)
        pulumi.export("password", user.password)
        pulumi.export("key_id", key.key_id)

    engine = registry.engine()
    result = engine.up(program)
    secret_key = str(result.outputs["key"])
    assert result.secret_outputs == {"key", "password"}
    state = json.dumps(engine.checkpoint())
    for secret in (registry.admin_key, secret_key, "frank-Pa55word"):
        assert secret not in state
    assert state.count('"[secret]"') >= 3
    assert str(result.outputs["key_id"]) in state, "what is not secret stays readable"
    for resource in engine.checkpoint()["resources"]:
        blob = base64.b64decode(resource["inputs"]["__provider"])
        assert registry.admin_key.encode() not in blob and registry.url.encode() not in blob
    engine.destroy()
    assert "frank" not in [u.name for u in registry.admin.list_users()]


def test_the_runner_is_the_engine_a_user_dry_runs_with(registry: Registry) -> None:
    """What the README tells users: a stack's config and a program file, preview then up."""
    engine = Engine({"modelyard:url": registry.url, "modelyard:apiKey": registry.admin_key,
                     "project:compartmentId": "dryrun"}, secret_keys=["modelyard:apiKey"])  # fmt: skip
    assert engine.preview(OCI_PROGRAM).ops("create") == ["container-configuration", "serving-repository"]
    assert engine.state == {}
    engine.up(OCI_PROGRAM)
    assert registry.admin.get_repository("dryrun/llama-serving").is_immutable
    assert sorted(engine.destroy()) == ["container-configuration", "serving-repository"]


def test_gcp_config_reads_the_stack_then_the_environment(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.pulumi.gcp import config

    def program() -> None:
        pulumi.export("project", config.project)
        pulumi.export("zone", config.zone)
        pulumi.export("region", config.region)

    monkeypatch.setenv("GOOGLE_REGION", "europe-west4")
    monkeypatch.setenv("GOOGLE_PROJECT", "from-env")
    engine = registry.engine(**{"gcp:project": "from-stack", "gcp:zone": "europe-west4-a"})
    assert engine.up(program).outputs == {"project": "from-stack", "zone": "europe-west4-a", "region": "europe-west4"}
    with pytest.raises(AttributeError, match="credentials"):
        _ = config.credentials
