"""The audit log and the registry's administration: configuration, compartments, storage.

The audit page filters by actor and action in the database (``AuditService.query``, as the
admin API does) and by repository and time while reading pages of it newest first; a page
ends on an event the filters admit, and the cursor is that event's id. Storage per
compartment is the admin API's usage report (``GET /api/v1/usage``: charged, logical and
exclusive bytes, and the quota), counted as quotas count it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from modelyard.api.admin import compartments as compartments_api
from modelyard.api.admin import lifecycle as lifecycle_api
from modelyard.domain.errors import ValidationFailed
from modelyard.domain.principals import AuditRecord
from modelyard.policy.authorizer import Permission
from modelyard.schemas import admin as schemas
from modelyard.web.browse import validated
from modelyard.web.page import WebCall, notice_of

AUDIT_PAGE_SIZE = 50
AUDIT_BATCH = 500
AUDIT_SCAN_LIMIT = 20_000  # events read for one page at most; the page then says it stopped early


def _time(call: WebCall, name: str) -> datetime | None:
    raw = call.query_str(name)
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed([(name, "a date or time such as 2026-01-31 or 2026-01-31T12:00")]) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _about(resource: str, repository: str) -> bool:
    """Whether an event's resource (``repository:r``, ``r:tag``, ``r@digest``) is the repository."""
    name = resource.removeprefix("repository:")
    return name == repository or name.startswith((repository + ":", repository + "@"))


async def audit(call: WebCall) -> web.StreamResponse:
    await call.require(Permission.AUDIT_READ)
    actor, action, repository = call.query_str("actor"), call.query_str("action"), call.query_str("repository")
    since, until = _time(call, "since"), _time(call, "until")
    before = call.page_number()
    found: list[AuditRecord] = []
    scanned = 0
    exhausted = False
    while len(found) <= AUDIT_PAGE_SIZE and scanned < AUDIT_SCAN_LIMIT:
        batch = await call.registry.read(call.registry.audit.query, AUDIT_BATCH, before, actor, action)
        scanned += len(batch)
        for record in batch:
            at = record.time if record.time.tzinfo else record.time.replace(tzinfo=UTC)
            if since is not None and at < since:
                exhausted = True
                break
            if until is not None and at > until:
                continue
            if repository and not _about(record.resource, repository):
                continue
            found.append(record)
        if exhausted or len(batch) < AUDIT_BATCH:
            exhausted = True
            break
        before = batch[-1].id
    events = found[:AUDIT_PAGE_SIZE]
    more = len(found) > AUDIT_PAGE_SIZE or not exhausted
    next_page = None
    if more:
        next_page = str(events[-1].id) if events else (str(before) if before is not None else None)
    filters = {"actor": actor or "", "action": action or "", "repository": repository or "",
               "since": call.query_str("since") or "", "until": call.query_str("until") or ""}  # fmt: skip
    return await call.render("audit.html", events=events, next_page=next_page, filters=filters)


async def admin(call: WebCall) -> web.StreamResponse:
    await call.require(Permission.COMPARTMENT_MANAGE)
    configuration = await compartments_api.get_registry_configuration(call)
    compartments = await call.registry.read(call.registry.compartments.page, None, None)
    usage: dict[str, Any] = {}
    counting = ""
    if await call.can(Permission.REGISTRY_CONFIGURE):
        report = await lifecycle_api.get_usage(call)  # GET /api/v1/usage: what quotas count
        usage = {item.name: item for item in report.compartments}
        counting = report.counting
    return await call.render(
        "admin.html", configuration=configuration, compartments=compartments, usage=usage, counting=counting,
        can_configure=await call.can(Permission.REGISTRY_CONFIGURE), notice=notice_of(call),
    )  # fmt: skip


async def configure(call: WebCall) -> web.StreamResponse:
    call.body = validated(schemas.RegistryConfiguration, {
        "is_repository_created_on_first_push": call.field("repositories_on_push") == "on",
        "is_compartment_created_on_first_push": call.field("compartments_on_push") == "on",
    })  # fmt: skip
    await compartments_api.put_registry_configuration(call)
    return call.redirect("/ui/admin", "Registry configuration saved.")


async def create_compartment(call: WebCall) -> web.StreamResponse:
    call.body = validated(schemas.CompartmentCreate, {
        "name": call.field("name"), "description": call.field("description"),
    })  # fmt: skip
    created = await compartments_api.create_compartment(call)
    return call.redirect("/ui/admin", f"Compartment {created.name} created.")
