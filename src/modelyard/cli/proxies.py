"""``modelyard proxy add|list|rm``: pull-through cache rules (registry administrators).

A rule makes pulls in a compartment or repository prefix fall through to an upstream registry:
``modelyard proxy add hub https://registry-1.docker.io --upstream-prefix library`` serves
``<registry>/hub/alpine:3`` from Docker Hub's ``library/alpine:3``, cached here.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from modelyard.cli.common import JsonOption, RegistryOption, admin_client, emit_json, emit_table, validated
from modelyard.schemas import proxies as schemas

proxy_app = typer.Typer(
    help="Pull-through cache: proxy a compartment or prefix to an upstream registry (administrators)."
)

PASSWORD_ENV = "MODELYARD_PROXY_PASSWORD"


@proxy_app.command("add")
def add(
    prefix: Annotated[str, typer.Argument(help="Compartment (hub) or repository prefix (hub/library) to proxy.")],
    upstream_url: Annotated[str, typer.Argument(help="The upstream registry's root, e.g. https://registry.example.")],
    upstream_prefix: Annotated[str, typer.Option(help="Put before the rest of the name upstream.")] = "",
    username: Annotated[str | None, typer.Option(help="User name at the upstream.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help=f"Read the upstream password from stdin (or set {PASSWORD_ENV}).")
    ] = False,
    tag_ttl: Annotated[int, typer.Option(help="Seconds a cached tag is served before it is revalidated.")] = (
        schemas.DEFAULT_TAG_TTL
    ),
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify the upstream's TLS certificate.")] = False,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Proxy PREFIX to UPSTREAM_URL (the password is read from stdin or the environment, never an argument)."""
    password = typer.get_text_stream("stdin").read().strip() if password_stdin else os.environ.get(PASSWORD_ENV)
    spec = validated(schemas.ProxyCreate, {
        "prefix": prefix, "upstream_url": upstream_url, "upstream_prefix": upstream_prefix, "username": username,
        "password": password or None, "tls_verify": not insecure, "tag_ttl_seconds": tag_ttl,
    })  # fmt: skip
    with admin_client(registry) as client:
        rule = client.create_proxy(spec)
    if as_json:
        emit_json(rule)
        return
    typer.echo(f"proxying {rule.prefix} to {rule.upstream_url}/{rule.upstream_prefix}".rstrip("/"))


@proxy_app.command("list")
def list_proxies(registry: RegistryOption = None, as_json: JsonOption = False) -> None:
    """Every pull-through rule (never a password)."""
    with admin_client(registry) as client:
        rules = client.list_proxies()
    if as_json:
        emit_json(rules)
        return
    emit_table(rules, [
        ("PREFIX", lambda r: r.prefix), ("UPSTREAM", lambda r: r.upstream_url),
        ("UPSTREAM PREFIX", lambda r: r.upstream_prefix), ("USER", lambda r: r.username or ""),
        ("TAG TTL", lambda r: f"{r.tag_ttl_seconds}s"), ("TLS", lambda r: "verify" if r.tls_verify else "insecure"),
    ])  # fmt: skip


@proxy_app.command("rm")
def remove(
    prefix: Annotated[str, typer.Argument(help="The rule's prefix (modelyard proxy list).")],
    registry: RegistryOption = None,
) -> None:
    """Stop proxying PREFIX (what is cached stays, as local repositories)."""
    with admin_client(registry) as client:
        client.delete_proxy(prefix)
    typer.echo(f"removed proxy rule {prefix}")
