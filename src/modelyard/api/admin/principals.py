"""Users, service accounts, their API keys, groups, and ``/api/v1/me``.

Managing principals needs ``principals.manage`` on the registry (the ``admin`` role); users
may also change their own password and manage their own API keys.

Changing one's own password needs the current one, administrators included: whoever holds a
session (a refresh token or API key) of the account must not be able to take it over. An
administrator resetting *another* user's password needs no current password -- that is what a
reset is for, and the administrator could delete and re-create the user anyway.
"""

from __future__ import annotations

from modelyard.api.admin.framework import Call, Operation
from modelyard.domain.principals import ApiKeyRecord, GroupRecord, ServiceAccountRecord, UserRecord
from modelyard.policy.authorizer import Permission
from modelyard.schemas import admin as schemas


def _user(record: UserRecord) -> schemas.User:
    return schemas.User(
        name=record.name, email=record.email, member=f"user:{record.email}", groups=list(record.groups),
        disabled=record.disabled, time_created=record.created_at,
    )  # fmt: skip


def _service_account(record: ServiceAccountRecord) -> schemas.ServiceAccount:
    return schemas.ServiceAccount(
        name=record.name, description=record.description, member=f"serviceAccount:{record.name}",
        disabled=record.disabled, time_created=record.created_at,
    )  # fmt: skip


def _key(record: ApiKeyRecord) -> schemas.ApiKey:
    return schemas.ApiKey(
        id=record.id, principal=record.principal, description=record.description, time_created=record.created_at,
        time_expires=record.expires_at, time_revoked=record.revoked_at, time_last_used=record.last_used_at,
    )  # fmt: skip


def _group(record: GroupRecord) -> schemas.Group:
    return schemas.Group(
        name=record.name, member=f"group:{record.name}", members=list(record.members), time_created=record.created_at
    )


async def _require_self_or_admin(call: Call, user: str) -> None:
    if call.auth_enabled and call.principal.kind == "user" and call.principal.name == user:
        return
    await call.require(Permission.PRINCIPALS_MANAGE)


# -- users ------------------------------------------------------------------------------------


async def list_users(call: Call) -> schemas.UserList:
    await call.require(Permission.PRINCIPALS_MANAGE)
    return schemas.UserList(items=[_user(u) for u in await call.registry.read(call.registry.identity.users)])


async def create_user(call: Call) -> schemas.User:
    await call.require(Permission.PRINCIPALS_MANAGE)
    body: schemas.UserCreate = call.body
    return _user(await call.registry.identity.create_user(body.name, body.email, body.password, actor=call.actor))


async def get_user(call: Call) -> schemas.User:
    name = call.path("user")
    await _require_self_or_admin(call, name)
    return _user(await call.registry.read(call.registry.identity.user, name))


async def delete_user(call: Call) -> None:
    await call.require(Permission.PRINCIPALS_MANAGE)
    await call.registry.identity.delete_user(call.path("user"), actor=call.actor)


async def set_password(call: Call) -> None:
    name = call.path("user")
    await _require_self_or_admin(call, name)
    body: schemas.PasswordChange = call.body
    own = call.auth_enabled and call.principal.kind == "user" and call.principal.name == name
    if own:
        await call.registry.identity.change_own_password(name, body.current_password, body.password, call.actor)
    else:
        await call.registry.identity.set_password(name, body.password, actor=call.actor)


# -- service accounts -------------------------------------------------------------------------


async def list_service_accounts(call: Call) -> schemas.ServiceAccountList:
    await call.require(Permission.PRINCIPALS_MANAGE)
    return schemas.ServiceAccountList(
        items=[_service_account(a) for a in await call.registry.read(call.registry.identity.service_accounts)]
    )


async def create_service_account(call: Call) -> schemas.ServiceAccount:
    await call.require(Permission.PRINCIPALS_MANAGE)
    body: schemas.ServiceAccountCreate = call.body
    return _service_account(
        await call.registry.identity.create_service_account(body.name, body.description, actor=call.actor)
    )


async def get_service_account(call: Call) -> schemas.ServiceAccount:
    await call.require(Permission.PRINCIPALS_MANAGE)
    return _service_account(await call.registry.read(call.registry.identity.service_account, call.path("account")))


async def delete_service_account(call: Call) -> None:
    await call.require(Permission.PRINCIPALS_MANAGE)
    await call.registry.identity.delete_service_account(call.path("account"), actor=call.actor)


# -- API keys (of users and service accounts) -------------------------------------------------


async def _key_owner(call: Call) -> str:
    """The principal whose keys the path names, after checking the caller may manage them."""
    if "user" in call.request.match_info:
        name = call.path("user")
        await _require_self_or_admin(call, name)
        await call.registry.read(call.registry.identity.user, name)
        return f"user:{name}"
    await call.require(Permission.PRINCIPALS_MANAGE)
    name = call.path("account")
    await call.registry.read(call.registry.identity.service_account, name)
    return f"serviceAccount:{name}"


async def list_keys(call: Call) -> schemas.ApiKeyList:
    keys = await call.registry.read(call.registry.identity.api_keys, await _key_owner(call))
    return schemas.ApiKeyList(items=[_key(k) for k in keys])


async def create_key(call: Call) -> schemas.NewApiKey:
    owner = await _key_owner(call)
    body: schemas.ApiKeyCreate = call.body
    created = await call.registry.identity.create_api_key(
        owner, body.description, body.expires_in_days, actor=call.actor
    )
    return schemas.NewApiKey(**_key(created.record).model_dump(), secret=created.secret)


async def revoke_key(call: Call) -> None:
    await call.registry.identity.revoke_api_key(await _key_owner(call), call.path("key_id"), actor=call.actor)


# -- groups -----------------------------------------------------------------------------------


async def list_groups(call: Call) -> schemas.GroupList:
    await call.require(Permission.PRINCIPALS_MANAGE)
    return schemas.GroupList(items=[_group(g) for g in await call.registry.read(call.registry.identity.groups)])


async def create_group(call: Call) -> schemas.Group:
    await call.require(Permission.PRINCIPALS_MANAGE)
    body: schemas.GroupCreate = call.body
    return _group(await call.registry.identity.create_group(body.name, actor=call.actor))


async def get_group(call: Call) -> schemas.Group:
    await call.require(Permission.PRINCIPALS_MANAGE)
    return _group(await call.registry.read(call.registry.identity.group, call.path("group")))


async def set_group_members(call: Call) -> schemas.Group:
    await call.require(Permission.PRINCIPALS_MANAGE)
    body: schemas.GroupMembers = call.body
    return _group(await call.registry.identity.set_group_members(call.path("group"), body.members, actor=call.actor))


async def delete_group(call: Call) -> None:
    await call.require(Permission.PRINCIPALS_MANAGE)
    await call.registry.identity.delete_group(call.path("group"), actor=call.actor)


async def me(call: Call) -> schemas.Me:
    p = call.principal
    return schemas.Me(
        subject=p.subject, kind=p.kind, name=p.name, email=p.email, groups=sorted(p.groups),
        auth_enabled=call.auth_enabled,
    )  # fmt: skip


USERS = "/api/v1/users"
USER = USERS + "/{user}"
ACCOUNTS = "/api/v1/service-accounts"
ACCOUNT = ACCOUNTS + "/{account}"
GROUPS = "/api/v1/groups"
GROUP = GROUPS + "/{group}"
T = "principals"


def _keys(base: str, who: str) -> list[Operation]:
    prefix = "User" if who == "user" else "ServiceAccount"
    return [
        Operation("GET", base + "/keys", f"list{prefix}Keys", f"List a {who}'s API keys", T, list_keys,
                  response=schemas.ApiKeyList, errors=(404,)),
        Operation("POST", base + "/keys", f"create{prefix}Key", f"Create an API key for a {who} (shown once)", T,
                  create_key, body=schemas.ApiKeyCreate, response=schemas.NewApiKey, status=201),
        Operation("DELETE", base + "/keys/{key_id}", f"revoke{prefix}Key", "Revoke an API key", T, revoke_key,
                  status=204, errors=(404,)),
    ]  # fmt: skip


OPERATIONS = [
    Operation("GET", "/api/v1/me", "getMe", "Who am I", T, me, response=schemas.Me, errors=()),
    Operation("GET", USERS, "listUsers", "List users", T, list_users, response=schemas.UserList, errors=()),
    Operation("POST", USERS, "createUser", "Create a user", T, create_user, body=schemas.UserCreate,
              response=schemas.User, status=201, errors=(409, 422)),
    Operation("GET", USER, "getUser", "Get a user", T, get_user, response=schemas.User, errors=(404,)),
    Operation("DELETE", USER, "deleteUser", "Delete a user", T, delete_user, status=204, errors=(404, 409)),
    Operation("PUT", USER + "/password", "setPassword",
              "Change a user's password (your own needs current_password)", T, set_password,
              body=schemas.PasswordChange, status=204, errors=(404, 422)),
    *_keys(USER, "user"),
    Operation("GET", ACCOUNTS, "listServiceAccounts", "List service accounts", T, list_service_accounts,
              response=schemas.ServiceAccountList, errors=()),
    Operation("POST", ACCOUNTS, "createServiceAccount", "Create a service account", T, create_service_account,
              body=schemas.ServiceAccountCreate, response=schemas.ServiceAccount, status=201, errors=(409, 422)),
    Operation("GET", ACCOUNT, "getServiceAccount", "Get a service account", T, get_service_account,
              response=schemas.ServiceAccount, errors=(404,)),
    Operation("DELETE", ACCOUNT, "deleteServiceAccount", "Delete a service account and its keys", T,
              delete_service_account, status=204, errors=(404,)),
    *_keys(ACCOUNT, "service account"),
    Operation("GET", GROUPS, "listGroups", "List groups", T, list_groups, response=schemas.GroupList, errors=()),
    Operation("POST", GROUPS, "createGroup", "Create a group", T, create_group, body=schemas.GroupCreate,
              response=schemas.Group, status=201, errors=(409, 422)),
    Operation("GET", GROUP, "getGroup", "Get a group", T, get_group, response=schemas.Group, errors=(404,)),
    Operation("PUT", GROUP + "/members", "setGroupMembers", "Replace a group's members", T, set_group_members,
              body=schemas.GroupMembers, response=schemas.Group),
    Operation("DELETE", GROUP, "deleteGroup", "Delete a group", T, delete_group, status=204, errors=(404,)),
]  # fmt: skip
