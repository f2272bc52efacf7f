"""Logging in and issuing access tokens, with the events they record.

Neither changes data the registry keeps (the throttle's counters aside), so their events are
written on their own (``AuditService.record``) rather than in a change's transaction. A failed
login is recorded however it came in (``/auth/token`` or the admin API); a successful one only
where the caller asks (a login at ``/auth/token`` is, but the admin API checks credentials on
every request, and recording each would flood the log).
"""

from __future__ import annotations

from typing import Any

from modelyard.domain.errors import RegistryError
from modelyard.domain.events import Actor, LoginFailed, LoginSucceeded, TokenIssued
from modelyard.policy.authorizer import Principal
from modelyard.services.audit import AuditService
from modelyard.services.identity import IdentityService, login_name
from modelyard.services.tokens import IssuedToken, TokenService


async def login(
    identity: IdentityService,
    audit: AuditService,
    username: str,
    password: str,
    client_ip: str,
    *,
    record_success: bool,
) -> Principal:
    """Check credentials (throttled, see :class:`IdentityService`), recording :class:`LoginFailed`
    under the name tried (an API key by its id: never a secret) and, with ``record_success``,
    :class:`LoginSucceeded`."""
    try:
        principal = await identity.authenticate(username, password, client_ip)
    except RegistryError as exc:
        actor = Actor(login_name(username, password), client_ip)
        await audit.record(LoginFailed(actor=actor, reason=exc.code.name))
        raise
    if record_success:
        await audit.record(LoginSucceeded(actor=Actor(principal.subject, client_ip)))
    return principal


async def issue_access(
    tokens: TokenService, audit: AuditService, actor: Actor, access: list[dict[str, Any]]
) -> IssuedToken:
    """An access token for ``actor`` carrying ``access`` (what the authorizer granted), recorded
    as :class:`TokenIssued`."""
    token = tokens.issue_access(actor.subject, access)
    granted = tuple(f"{a['type']}:{a['name']}:{','.join(a['actions'])}" for a in access)
    await audit.record(TokenIssued(actor=actor, access=granted))
    return token
