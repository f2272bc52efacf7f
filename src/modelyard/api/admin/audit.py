"""``/api/v1/audit``: the audit log, newest first, with ``actor`` and ``action`` filters."""

from __future__ import annotations

from modelyard.api.admin.framework import LIMIT, PAGE_NUMBER, Call, Operation, QueryParam
from modelyard.policy.authorizer import Permission
from modelyard.schemas import admin as schemas


async def list_audit(call: Call) -> schemas.AuditPage:
    await call.require(Permission.AUDIT_READ)
    page = call.page_number()
    limit = call.limit()
    records = await call.registry.read(
        call.registry.audit.query, limit + 1, page, call.query_str("actor"), call.query_str("action")
    )
    items = [
        schemas.AuditEvent(
            id=r.id,
            time=r.time,
            actor=r.actor,
            action=r.action,
            resource=r.resource,
            outcome=r.outcome,
            client_ip=r.client_ip,
            detail=r.detail,
        )
        for r in records[:limit]
    ]
    return schemas.AuditPage(items=items, next_page=str(items[-1].id) if len(records) > limit else None)


OPERATIONS = [
    Operation(
        "GET", "/api/v1/audit", "listAuditEvents", "Read the audit log (newest first)", "audit", list_audit,
        response=schemas.AuditPage, errors=(422,),
        query=(QueryParam("actor", "string", "Only this actor, e.g. user:alice."),
               QueryParam("action", "string", "Only this action, e.g. push."), LIMIT, PAGE_NUMBER),
    ),
]  # fmt: skip
