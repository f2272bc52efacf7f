"""Access pages: IAM bindings of the registry, a compartment or a repository (editable by those
who may write the policy), and users, service accounts (with API keys shown once) and groups.

Every read and change goes through the admin API's handlers (``api/admin/iam.py``,
``api/admin/principals.py``), whose checks decide; the page only hides buttons the viewer
could not use. A policy is changed against the etag the page was rendered with, so two
administrators can't silently overwrite each other (the second gets a conflict page).
"""

from __future__ import annotations

from aiohttp import web

from modelyard.api.admin import iam as iam_api
from modelyard.api.admin import principals as principals_api
from modelyard.api.admin import repositories as repositories_api
from modelyard.api.admin.framework import ResourceKind
from modelyard.domain.errors import ValidationFailed
from modelyard.policy.authorizer import MEMBER_PATTERN, ROLES, Permission
from modelyard.schemas import admin as schemas
from modelyard.web.browse import validated
from modelyard.web.page import WebCall, form_list, notice_of, repo_url

MEMBER_HELP = "user:NAME, serviceAccount:NAME, group:NAME, allUsers or allAuthenticatedUsers"


def _where(call: WebCall) -> tuple[ResourceKind, str | None, str]:
    """The policy's resource kind, name, and the page that shows it."""
    match = call.request.match_info
    if "repository" in match:
        return "repository", match["repository"], repo_url(match["repository"], "access")
    if "compartment_id" in match:
        return "compartment", match["compartment_id"], f"/ui/access/compartments/{match['compartment_id']}"
    return "registry", None, "/ui/access"


async def _principals(call: WebCall) -> dict[str, object] | None:
    """Users, service accounts and groups, for those who may manage them."""
    if not await call.can(Permission.PRINCIPALS_MANAGE):
        return None
    return {
        "users": (await principals_api.list_users(call)).items,
        "accounts": (await principals_api.list_service_accounts(call)).items,
        "groups": (await principals_api.list_groups(call)).items,
    }


async def policy_page(call: WebCall, *, new_key: schemas.NewApiKey | None = None) -> web.StreamResponse:
    kind, name, _ = _where(call)
    policy = await iam_api.get_policy(call)
    repo = await repositories_api.get_repository(call) if kind == "repository" else None
    return await call.render(
        "access.html",
        kind=kind,
        name=name,
        policy=policy,
        roles=list(ROLES),
        can_edit=await call.can(Permission.IAM_WRITE, kind, name),
        principals=await _principals(call),
        new_key=new_key,
        repo=repo,
        tab="access",
        notice=notice_of(call),
    )


async def change_policy(call: WebCall) -> web.StreamResponse:
    """Add or remove one member of one role, against the etag the form was rendered with."""
    _kind, _name, page_path = _where(call)
    role, member, action = call.field("role"), call.field("member"), call.field("action")
    if role not in ROLES:
        raise ValidationFailed([("role", f"one of {', '.join(ROLES)}")])
    if not MEMBER_PATTERN.match(member):
        raise ValidationFailed([("member", MEMBER_HELP)])
    current = await iam_api.get_policy(call)
    bindings = {b.role: list(b.members) for b in current.bindings}
    members = bindings.setdefault(role, [])
    if action == "remove":
        bindings[role] = [m for m in members if m != member]
    elif member not in members:
        members.append(member)
    call.body = validated(schemas.Policy, {
        "bindings": [{"role": r, "members": m} for r, m in bindings.items() if m],
        "etag": call.field("etag") or None,
    })  # fmt: skip
    await iam_api.set_policy(call)
    verb = "removed from" if action == "remove" else "granted"
    return call.redirect(page_path, f"{member} {verb} {role}.")


async def create_user(call: WebCall) -> web.StreamResponse:
    call.body = validated(schemas.UserCreate, {
        "name": call.field("name"), "email": call.field("email"), "password": call.field("password"),
    })  # fmt: skip
    created = await principals_api.create_user(call)
    return call.redirect("/ui/access", f"User {created.name} created.")


async def create_service_account(call: WebCall) -> web.StreamResponse:
    call.body = validated(
        schemas.ServiceAccountCreate, {"name": call.field("name"), "description": call.field("description")}
    )
    created = await principals_api.create_service_account(call)
    return call.redirect("/ui/access", f"Service account {created.name} created.")


async def create_key(call: WebCall) -> web.StreamResponse:
    """A new API key, shown on the page this once (never stored in clear, never shown again)."""
    days = call.field("expires_in_days")
    call.body = validated(schemas.ApiKeyCreate, {
        "description": call.field("description"), "expires_in_days": int(days) if days.isdigit() else None,
    })  # fmt: skip
    created = await principals_api.create_key(call)
    return await policy_page(call, new_key=created)


async def create_group(call: WebCall) -> web.StreamResponse:
    call.body = validated(schemas.GroupCreate, {"name": call.field("name")})
    created = await principals_api.create_group(call)
    return call.redirect("/ui/access", f"Group {created.name} created.")


async def set_group_members(call: WebCall) -> web.StreamResponse:
    call.body = validated(schemas.GroupMembers, {"members": form_list(call.form, "members")})
    group = await principals_api.set_group_members(call)
    return call.redirect("/ui/access", f"Members of {group.name} saved.")
