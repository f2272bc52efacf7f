"""Pull-through cache rules: managing them (the admin API's use cases) and finding the one that
covers a repository on the pull path, with an upstream client per rule.

The pull path asks on every manifest GET of every repository whether a rule covers it, so the
rules are held in memory and reloaded at most every ``refresh`` seconds (a rule added or removed
through another worker or replica is seen within that time; through this one at once). The
upstream password is decrypted only to build that rule's client, and appears in no record.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from modelyard.domain.errors import ErrorCode, RegistryError, ValidationFailed
from modelyard.domain.events import Actor, ProxyRuleCreated, ProxyRuleDeleted
from modelyard.domain.proxy import ProxyRule, match_rule
from modelyard.domain.records import AlreadyExistsError
from modelyard.domain.reference import validate_name
from modelyard.domain.upstream import UpstreamCredentials
from modelyard.metadata.proxy import ProxyStore
from modelyard.services.audit import log_events
from modelyard.services.proxy.upstream import ClientFactory, UpstreamClient
from modelyard.services.runner import BlockingRunner
from modelyard.services.secretbox import SecretBox

SECRET_PURPOSE = "proxy-upstream-password"
MAX_TTL = 30 * 86400


def validate_upstream_url(url: str) -> str:
    """An ``http(s)://host[:port]`` registry root, no path, query or credentials in it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (reading it validates it)
    except ValueError as exc:
        raise ValidationFailed([("upstream_url", f"is not a valid URL: {exc}")]) from None
    if not url.isascii() or any(c.isspace() or not c.isprintable() for c in url) or len(url) > 2048:
        raise ValidationFailed([("upstream_url", "must be printable ASCII of at most 2048 characters")])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed([("upstream_url", "must be an http:// or https:// URL")])
    if parts.username or parts.password:
        raise ValidationFailed([("upstream_url", "must not carry credentials: give username and password")])
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ValidationFailed(
            [("upstream_url", "must be the registry's root (no path): map names with upstream_prefix")]
        )
    return url.rstrip("/")


def _validate_prefix(field: str, value: str, *, empty: bool) -> str:
    value = value.strip("/")
    if not value and empty:
        return value
    try:
        return validate_name(value)
    except RegistryError as exc:
        raise ValidationFailed([(field, exc.message)]) from None


class ProxyRules:
    def __init__(
        self,
        store: ProxyStore,
        box: SecretBox,
        runner: BlockingRunner,
        client_factory: ClientFactory,
        *,
        refresh: float = 2.0,
    ) -> None:
        self._store = store
        self._box = box
        self._run = runner.run
        self._factory = client_factory
        self._refresh = refresh
        self._rules: list[ProxyRule] = []
        self._loaded_at = float("-inf")
        self._clients: dict[tuple[int, str], UpstreamClient] = {}

    # -- the pull path ----------------------------------------------------------------------

    async def match(self, repository: str) -> ProxyRule | None:
        """The rule covering ``repository``, from rules at most ``refresh`` seconds old."""
        if time.monotonic() - self._loaded_at > self._refresh:
            self._rules = await self._run(self._store.all_rules)
            self._loaded_at = time.monotonic()
        return match_rule(self._rules, repository)

    async def client(self, rule: ProxyRule) -> UpstreamClient:
        """The rule's upstream client, made once per rule (its connection pool and tokens)."""
        key = (rule.id, rule.created_at.isoformat())
        found = self._clients.get(key)
        if found is None:
            credentials = None
            if rule.username is not None:
                sealed = await self._run(self._store.secret_ciphertext, rule.id)
                password = self._box.open(sealed, SECRET_PURPOSE) if sealed is not None else ""
                credentials = UpstreamCredentials(rule.username, password)
            found = self._clients[key] = self._factory(rule.upstream_url, credentials, rule.tls_verify)
        return found

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    # -- administration ---------------------------------------------------------------------

    def all_rules(self) -> list[ProxyRule]:
        return self._store.all_rules()

    async def create(
        self,
        prefix: str,
        upstream_url: str,
        *,
        upstream_prefix: str = "",
        username: str | None = None,
        password: str | None = None,
        tls_verify: bool = True,
        tag_ttl_seconds: int,
        actor: Actor,
    ) -> ProxyRule:
        """Add a rule; the password is stored sealed and never shown again."""
        prefix = _validate_prefix("prefix", prefix, empty=False)
        upstream_url = validate_upstream_url(upstream_url)
        upstream_prefix = _validate_prefix("upstream_prefix", upstream_prefix, empty=True)
        if not username:  # a password alone is a bare token, sent as Basic ":token"
            username = "" if password is not None else None
        if not 0 <= tag_ttl_seconds <= MAX_TTL:
            raise ValidationFailed([("tag_ttl_seconds", f"must be between 0 and {MAX_TTL}")])
        sealed = self._box.seal(password, SECRET_PURPOSE) if password is not None else None
        event = ProxyRuleCreated(actor=actor, prefix=prefix, upstream_url=upstream_url, upstream_prefix=upstream_prefix)
        try:
            rule = await self._run(
                self._store.create, prefix, upstream_url, upstream_prefix, username, sealed, tls_verify,
                tag_ttl_seconds, actor.subject, events=[event],
            )  # fmt: skip
        except AlreadyExistsError:
            raise RegistryError(
                ErrorCode.CONFLICT, f"a proxy rule for {prefix!r} exists; remove it first", detail={"prefix": prefix}
            ) from None
        self._loaded_at = float("-inf")
        log_events([event])
        return rule

    async def delete(self, prefix: str, *, actor: Actor) -> None:
        prefix = prefix.strip("/")
        event = ProxyRuleDeleted(actor=actor, prefix=prefix)
        if not await self._run(self._store.delete, prefix, events=[event]):
            raise RegistryError(ErrorCode.NOT_FOUND, f"no proxy rule for {prefix!r}", detail={"prefix": prefix})
        self._loaded_at = float("-inf")
        log_events([event])
