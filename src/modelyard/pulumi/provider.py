"""The plumbing every modelyard resource provider shares: arguments, check, diff, errors.

A provider here is a :class:`pulumi.dynamic.ResourceProvider`. Pulumi pickles it (with dill)
into the resource's ``__provider`` input and the engine's dynamic-provider host unpickles it in
another process, calls ``configure`` with the stack config, then ``check``/``diff``/``create``/
``update``/``read``/``delete``. So a provider object holds no connection and no credentials
when pickled (:meth:`RegistryProvider.__getstate__`): it finds them again where it runs
(:mod:`modelyard.pulumi.connection`).

Each resource declares its arguments as :class:`Arg` (type, required, whether a change replaces
the resource). ``check`` refuses an argument nobody declared, a wrong type or a bad value with a
:class:`pulumi.dynamic.CheckFailure` naming it, so ``pulumi preview`` fails before anything is
touched; ``diff`` reports changed arguments and which of them replace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    DiffResult,
    ReadResult,
    ResourceProvider,
)
from pulumi.output import Unknown

from modelyard.client.admin import AdminClient, ApiError, RegistryUnreachableError
from modelyard.pulumi.connection import API_KEY_KEY, URL_KEY, Connection

PROVIDER_KEY = "__provider"

Validator = Callable[[Any], str | None]


class ModelyardError(Exception):
    """The registry refused an operation, or could not be reached; the message says which and why."""


def is_unknown(value: Any) -> bool:
    """A value not computed yet (a preview of something that depends on a resource to create)."""
    return isinstance(value, Unknown) or value == pulumi.runtime.rpc.UNKNOWN


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()
    if kind == "list[str]":
        return isinstance(value, list | tuple) and all(isinstance(v, str) or is_unknown(v) for v in value)
    if kind == "dict[str,str]":
        return isinstance(value, dict) and all(isinstance(v, str) or is_unknown(v) for v in value.values())
    if kind == "dict":
        return isinstance(value, dict)
    if kind == "list[dict]":
        return isinstance(value, list | tuple) and all(isinstance(v, dict) for v in value)
    raise AssertionError(kind)


@dataclass(frozen=True)
class Arg:
    """One argument of a resource.

    ``replaces``: changing it replaces the resource (it names it). ``validate`` returns a reason
    when the (known, well-typed) value is refused.
    """

    kind: str
    required: bool = False
    replaces: bool = False
    validate: Validator | None = None
    unsupported: str | None = None  # an argument of the cloud's API that modelyard refuses, and why


def api_message(exc: ApiError) -> str:
    return f"{exc.code} ({exc.status}): {exc.message}"


class RegistryProvider(ResourceProvider):
    """Base of modelyard's providers. Subclasses set ``TYPE`` (for messages), ``ARGS``,
    ``OUTPUTS`` and implement ``create``/``read``/``update``/``delete``."""

    TYPE: ClassVar[str] = "modelyard:Resource"
    ARGS: ClassVar[dict[str, Arg]] = {}
    OUTPUTS: ClassVar[tuple[str, ...]] = ()
    # Replacing keeps the name, so the old one must go first (users, service accounts, ...).
    DELETE_BEFORE_REPLACE: ClassVar[bool] = False
    # Nothing secret is captured (see __getstate__): keep the serialised provider readable.
    serialize_as_secret_always = False

    def __init__(self) -> None:
        super().__init__()
        self._config: dict[str, Any] = {}
        self._connection: Connection | None = None
        self._client: AdminClient | None = None

    # -- pickling: what goes into the state is the class, never a connection or a key -------

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    # -- connection ------------------------------------------------------------------------

    def configure(self, req: ConfigureRequest) -> None:
        """Keep the stack config's ``modelyard:url`` and ``modelyard:apiKey`` (in this process only)."""
        self._config = {key: req.config.get(key) for key in (URL_KEY, API_KEY_KEY)}
        self._connection = None
        self._client = None

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            self._connection = Connection.resolve(self._config)
        return self._connection

    @property
    def client(self) -> AdminClient:
        if self._client is None:
            self._client = self.connection.admin()
        return self._client

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one admin API call; a refusal becomes a :class:`ModelyardError` saying what was tried."""
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            raise ModelyardError(f"{self.TYPE} {what}: {api_message(exc)}") from None
        except RegistryUnreachableError as exc:
            raise ModelyardError(f"{self.TYPE} {what}: {exc}") from None

    def find(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Like :meth:`call`, but a 404 is ``None`` (the resource is gone)."""
        try:
            return fn(*args)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise ModelyardError(f"{self.TYPE} read: {api_message(exc)}") from None
        except RegistryUnreachableError as exc:
            raise ModelyardError(f"{self.TYPE} read: {exc}") from None

    # -- check and diff --------------------------------------------------------------------

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures: list[CheckFailure] = []
        inputs: dict[str, Any] = {}
        for key, value in news.items():
            if key == PROVIDER_KEY:
                continue
            arg = self.ARGS.get(key)
            if arg is None:
                if key in self.OUTPUTS and value is None:
                    continue  # an output's placeholder, so the program can read it
                known = ", ".join(sorted(self.ARGS))
                failures.append(CheckFailure(key, f"{self.TYPE} has no argument {key!r} (it takes: {known})"))
                continue
            if value is None:
                continue
            if arg.unsupported:
                reason = f"{self.TYPE}: {key} is not supported by modelyard: {arg.unsupported}"
                failures.append(CheckFailure(key, reason))
                continue
            inputs[key] = value
            if is_unknown(value):
                continue
            if not _type_ok(arg.kind, value):
                failures.append(CheckFailure(key, f"{self.TYPE}: {key} must be {arg.kind}, not {value!r}"))
                continue
            refused = arg.validate(value) if arg.validate else None
            if refused:
                failures.append(CheckFailure(key, f"{self.TYPE}: {key}: {refused}"))
        for key, arg in self.ARGS.items():
            if arg.required and inputs.get(key) is None:
                failures.append(CheckFailure(key, f"{self.TYPE}: {key} is required"))
        if not failures:
            failures = [CheckFailure(k, f"{self.TYPE}: {r}") for k, r in self.validate(inputs)]
        return CheckResult(inputs, failures)

    def validate(self, inputs: dict[str, Any]) -> list[tuple[str, str]]:
        """Rules across arguments (known values only); ``(argument, reason)`` pairs."""
        return []

    def comparable(self, key: str, value: Any) -> Any:
        """The form of an argument that diff compares: lists of strings are sets here (members,
        tag patterns)."""
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return sorted(set(value))
        return value

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # An argument left out is not managed: only what the program sets is compared (with the
        # live values after a refresh, so a change made outside shows up here).
        changed = [
            key
            for key in self.ARGS
            if news.get(key) is not None
            if is_unknown(news[key]) or self.comparable(key, news[key]) != self.comparable(key, olds.get(key))
        ]
        replaces = [key for key in changed if self.ARGS[key].replaces]
        return DiffResult(
            changes=bool(changed),
            replaces=replaces,
            stables=[key for key, arg in self.ARGS.items() if arg.replaces],
            delete_before_replace=self.DELETE_BEFORE_REPLACE if replaces else None,
        )

    # -- read: refresh and import ------------------------------------------------------------

    @staticmethod
    def gone() -> ReadResult:
        """What ``read`` answers for a resource deleted outside Pulumi: no id, so the engine drops
        it from the state and the next update creates it again."""
        return ReadResult("", {})

    def inputs_of(self, outs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments that describe what was read (for ``import``/``refresh`` diffs)."""
        return {key: outs[key] for key in self.ARGS if outs.get(key) is not None}
