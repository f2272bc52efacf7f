"""``/api/v1/audit``: the audit log, newest first, with ``actor`` and ``action`` filters."""

from __future__ import annotations

from modelyard.api.admin.framework import LIMIT, Call, Operation, QueryParam, validation_error
from modelyard.policy.authorizer import Permission
from modelyard.schemas import admin as schemas


async def list_audit(call: Call) -> schemas.AuditPage:
    call.require(Permission.AUDIT_READ)
    page = call.request.query.get("page")  # "" is no id either
    # ASCII digits, and few enough for ``int`` ("²" is a digit to ``isdigit``; ``int`` refuses 4300+).
    if page is not None and not (page.isascii() and page.isdigit() and len(page) <= 18):
        raise validation_error([("page", "must be the next_page value of a previous response")])
    limit = call.limit()
    records = call.registry.audit.query(
        limit + 1, int(page) if page else None, call.query_str("actor"), call.query_str("action")
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
               QueryParam("action", "string", "Only this action, e.g. push."), LIMIT,
               QueryParam("page", "string", "The next_page value of the previous response.",
                          pattern=r"^[0-9]{1,18}$")),
    ),
]  # fmt: skip
