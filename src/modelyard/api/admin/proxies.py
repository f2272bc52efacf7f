"""``/api/v1/proxies``: pull-through cache rules. Every operation needs registry admin
(``registry.configure`` on the registry): a rule makes the registry fetch from another one with
credentials it holds, and creates repositories under its prefix on their first pull."""

from __future__ import annotations

from modelyard.api.admin.framework import Call, Operation
from modelyard.domain.errors import ErrorCode, RegistryError
from modelyard.domain.proxy import ProxyRule
from modelyard.policy.authorizer import Permission
from modelyard.schemas import proxies as schemas

ADMIN = Permission.REGISTRY_CONFIGURE


def _proxy(rule: ProxyRule) -> schemas.Proxy:
    return schemas.Proxy(
        id=rule.id, prefix=rule.prefix, upstream_url=rule.upstream_url, upstream_prefix=rule.upstream_prefix,
        username=rule.username, has_password=rule.has_password, tls_verify=rule.tls_verify,
        tag_ttl_seconds=rule.tag_ttl_seconds, created_by=rule.created_by, created_at=rule.created_at,
    )  # fmt: skip


async def create_proxy(call: Call) -> schemas.Proxy:
    await call.require(ADMIN, "registry")
    body: schemas.ProxyCreate = call.body
    rule = await call.registry.proxy.rules.create(
        body.prefix, body.upstream_url, upstream_prefix=body.upstream_prefix, username=body.username,
        password=body.password, tls_verify=body.tls_verify, tag_ttl_seconds=body.tag_ttl_seconds, actor=call.actor,
    )  # fmt: skip
    return _proxy(rule)


async def list_proxies(call: Call) -> schemas.ProxyList:
    await call.require(ADMIN, "registry")
    return schemas.ProxyList(items=[_proxy(r) for r in await call.registry.read(call.registry.proxy.rules.all_rules)])


async def show_proxy(call: Call) -> schemas.Proxy:
    await call.require(ADMIN, "registry")
    prefix = call.path("prefix").strip("/")
    for rule in await call.registry.read(call.registry.proxy.rules.all_rules):
        if rule.prefix == prefix:
            return _proxy(rule)
    raise RegistryError(ErrorCode.NOT_FOUND, f"no proxy rule for {prefix[:255]!r}", detail={"prefix": prefix[:255]})


async def delete_proxy(call: Call) -> None:
    await call.require(ADMIN, "registry")
    await call.registry.proxy.rules.delete(call.path("prefix"), actor=call.actor)


BASE = "/api/v1/proxies"
ONE = BASE + "/{prefix:.+}"
TAG = "proxies"

OPERATIONS = [
    Operation("POST", BASE, "createProxy", "Proxy a compartment or repository prefix to an upstream registry", TAG,
              create_proxy, body=schemas.ProxyCreate, response=schemas.Proxy, status=201, errors=(401, 403, 409, 422)),
    Operation("GET", BASE, "listProxies", "Pull-through cache rules", TAG, list_proxies, response=schemas.ProxyList,
              errors=(401, 403)),
    Operation("GET", ONE, "getProxy", "One pull-through cache rule", TAG, show_proxy, response=schemas.Proxy,
              errors=(401, 403, 404)),
    Operation("DELETE", ONE, "deleteProxy", "Stop proxying a prefix (what is cached stays)", TAG, delete_proxy,
              status=204, errors=(401, 403, 404)),
]  # fmt: skip
