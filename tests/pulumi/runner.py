"""Run a Pulumi program for real without the Pulumi CLI: a small engine on the SDK's mock runtime.

The Pulumi engine is a Go binary that is not on PyPI, so this module stands in for the two parts
of it a Python program with dynamic resources meets:

- the **resource monitor**: :class:`EngineMonitor` extends ``pulumi.runtime.mocks.MockMonitor``
  (installed with ``pulumi.runtime.set_mocks``) and answers ``RegisterResource`` and
  ``ReadResource`` the way the engine would, with a state carried from one run to the next;
- the **dynamic-provider host** (``pulumi/dynamic/__main__.py``): each dynamic resource's
  ``__provider`` input is deserialised with Pulumi's own code (``_deserialize`` around
  ``dill.loads`` of the base64 blob), configured once per blob with the stack config
  (``ConfigureRequest``), then called: ``check`` (failures stop the run, as at preview),
  ``diff`` (update in place, or replace: create first, or delete first when the provider asks),
  ``create``/``update``/``delete``, ``read`` for ``refresh`` and for ``import_``.

Secrets follow the engine's rules: an input given as a secret, or named in
``additional_secret_outputs``, is a secret output in the program and is masked in
:meth:`Engine.checkpoint` (the engine would encrypt it there).

Dry-run a program against a registry (a user's own stack)::

    from tests.pulumi.runner import Engine
    import my_program                                   # defines main() that declares resources
    engine = Engine({"modelyard:url": "http://localhost:5000", "modelyard:apiKey": key},
                    secret_keys=["modelyard:apiKey"])
    engine.preview(my_program.main)                     # check + diff: what would change
    result = engine.up(my_program.main)                 # creates/updates for real
    print(result.outputs)                               # the pulumi.export()s
    engine.refresh()                                    # what changed outside Pulumi
    engine.destroy()
"""

from __future__ import annotations

import asyncio
import base64
import runpy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dill  # type: ignore[import-untyped]
import pulumi
from pulumi.dynamic import Config, ConfigureRequest, ResourceProvider
from pulumi.runtime import mocks, rpc
from pulumi.runtime._serialization import _deserialize
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import ROOT, SETTINGS, get_root_resource
from pulumi.runtime.stack import Stack, run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

PROVIDER_KEY = "__provider"
DYNAMIC_PREFIX = "pulumi-python:dynamic"
MASK = "[secret]"


class CheckFailed(Exception):
    """``check`` refused a resource's inputs: what ``pulumi preview`` prints as an error."""

    def __init__(self, resource: str, failures: list[tuple[str, str]]) -> None:
        self.failures = failures
        lines = "; ".join(f"{prop}: {reason}" for prop, reason in failures)
        super().__init__(f"{resource}: {lines}")


@dataclass
class Record:
    """One resource in the state, as the engine keeps it."""

    urn: str
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    secrets: set[str] = field(default_factory=set)
    external: bool = False  # read with ``get``: not managed, never deleted


@dataclass
class Step:
    op: str  # create, update, replace, same, delete, import, read
    urn: str
    changes: list[str] = field(default_factory=list)


@dataclass
class Result:
    outputs: dict[str, Any]
    secret_outputs: set[str]
    steps: list[Step]

    def ops(self, op: str) -> list[str]:
        """Names of the resources that had this step, sorted (independent resources register in parallel)."""
        return sorted(step.urn.rsplit("::", 1)[-1] for step in self.steps if step.op == op)


def _plain(outs: Mapping[str, Any] | None) -> dict[str, Any]:
    """Outputs as the state keeps them (the host adds ``__provider``; the state has it in inputs)."""
    return {k: v for k, v in (outs or {}).items() if k != PROVIDER_KEY}


def _unwrap(inputs: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Plain values and the names of those that were secrets (the SDK pushes nested secrets up)."""
    plain, secrets = {}, set()
    for key, value in inputs.items():
        if rpc.is_rpc_secret(value):
            secrets.add(key)
        plain[key] = rpc.unwrap_rpc_secret(value)
    return plain, secrets


_REPORTED: list[BaseException] = []


def _quiet_about(error: BaseException) -> None:
    """The SDK fails every output of a resource whose registration failed; the run raises the
    error itself, so asyncio need not print each unread output's copy when it is collected."""
    _REPORTED[:] = [*_REPORTED[-20:], error]
    loop = asyncio.get_event_loop()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not any(context.get("exception") is seen for seen in _REPORTED):
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class _NoMocks(mocks.Mocks):
    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        raise AssertionError("the engine monitor handles resources itself")

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        raise NotImplementedError(f"no provider functions here ({args.token})")


class Engine:
    """A stack: its config and its state, across :meth:`preview`, :meth:`up`, :meth:`refresh`
    and :meth:`destroy` runs, as ``pulumi`` would keep them."""

    def __init__(
        self,
        config: Mapping[str, str] | None = None,
        *,
        secret_keys: list[str] | None = None,
        project: str = "project",
        stack: str = "dev",
    ) -> None:
        self.config = dict(config or {})
        self.secret_keys = list(secret_keys or [])
        self.project = project
        self.stack = stack
        self.state: dict[str, Record] = {}
        self._providers: dict[str, ResourceProvider] = {}
        self._lock = threading.Lock()

    # -- the dynamic-provider host ----------------------------------------------------------

    def provider(self, blob: str) -> ResourceProvider:
        """Deserialise and configure a provider once per blob, as ``pulumi.dynamic.__main__`` does."""
        with self._lock:
            found = self._providers.get(blob)
            if found is None:
                found = _deserialize(lambda: dill.loads(base64.b64decode(blob)))
                found.configure(ConfigureRequest(Config(raw_config=dict(self.config), project_name=self.project)))
                self._providers[blob] = found
            return found

    # -- runs ----------------------------------------------------------------------------------

    def preview(self, program: Callable[[], None]) -> Result:
        """Check and diff every resource; nothing is changed."""
        return self._run(program, preview=True)

    def up(self, program: Callable[[], None], *, refresh: bool = False) -> Result:
        """Run the program: create, update, replace, import; then delete what it no longer declares.
        ``refresh`` reads every resource first (``pulumi up --refresh``)."""
        if refresh:
            self.refresh()
        result = self._run(program, preview=False)
        declared = {step.urn for step in result.steps}
        for urn in reversed(list(self.state)):
            record = self.state[urn]
            if urn not in declared and not record.external:
                self._delete(record)
                result.steps.append(Step("delete", urn))
        return result

    def refresh(self) -> dict[str, list[str]]:
        """Read every resource back; returns, by resource name, what changed ("deleted" when gone)."""
        changed: dict[str, list[str]] = {}
        for urn, record in list(self.state.items()):
            provider = self.provider(record.inputs[PROVIDER_KEY])
            result = provider.read(record.id, {**record.outputs, PROVIDER_KEY: record.inputs[PROVIDER_KEY]})
            if not result.id:
                del self.state[urn]
                changed[record.name] = ["deleted"]
                continue
            outs = _plain(result.outs)
            diffs = sorted(k for k in set(outs) | set(record.outputs) if outs.get(k) != record.outputs.get(k))
            if diffs:
                changed[record.name] = diffs
            record.id, record.outputs = result.id, outs
            if result.inputs is not None:
                record.inputs = {**result.inputs, PROVIDER_KEY: record.inputs[PROVIDER_KEY]}
        return changed

    def destroy(self) -> list[str]:
        deleted = []
        for urn in reversed(list(self.state)):
            record = self.state[urn]
            if not record.external:
                self._delete(record)
                deleted.append(record.name)
        self.state.clear()
        return deleted

    def checkpoint(self) -> dict[str, Any]:
        """The state as the engine would write it, secrets masked (the engine encrypts them)."""

        def masked(values: dict[str, Any], secrets: set[str]) -> dict[str, Any]:
            return {k: (MASK if k in secrets and v is not None else v) for k, v in values.items()}

        return {
            "resources": [
                {
                    "urn": r.urn,
                    "type": r.type,
                    "id": r.id,
                    "inputs": masked(r.inputs, r.secrets),
                    "outputs": masked(r.outputs, r.secrets),
                }
                for r in self.state.values()
            ]
        }

    def _delete(self, record: Record) -> None:
        provider = self.provider(record.inputs[PROVIDER_KEY])
        provider.delete(record.id, {**record.outputs, PROVIDER_KEY: record.inputs[PROVIDER_KEY]})
        self.state.pop(record.urn, None)

    def _run(self, program: Callable[[], None], *, preview: bool) -> Result:
        # An earlier asyncio test may have left the main thread without a current loop
        # (pytest-asyncio closes its loop and sets None); Pulumi's resources need one.
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        monitor = EngineMonitor(self, preview=preview)
        ROOT.set(None)  # a fresh root stack per run, as each `pulumi up` has
        pulumi.runtime.set_mocks(_NoMocks(), project=self.project, stack=self.stack, preview=preview, monitor=monitor)
        pulumi.runtime.set_all_config(dict(self.config), self.secret_keys)
        SETTINGS.rpc_manager.clear()
        SETTINGS.outputs.clear()
        exported: dict[str, Any] = {}
        secret: set[str] = set()

        async def collect() -> None:
            stack = get_root_resource()
            assert isinstance(stack, Stack)
            for name, value in stack.outputs.items():
                output = pulumi.Output.from_input(value)
                exported[name] = await output.future()
                if await output.is_secret():
                    secret.add(name)

        def main() -> Any:
            program()
            return collect()

        try:
            _sync_await(run_pulumi_func(main))
        finally:
            if monitor.error is not None:
                _quiet_about(monitor.error)
        if monitor.error is not None:
            raise monitor.error
        return Result(exported, secret, monitor.steps)


class EngineMonitor(mocks.MockMonitor):
    """The resource monitor: registrations go to the resources' own providers, with the state."""

    def __init__(self, engine: Engine, *, preview: bool) -> None:
        super().__init__(_NoMocks())
        self.engine = engine
        self.preview = preview
        self.steps: list[Step] = []
        self.error: BaseException | None = None

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
        news, secrets = _unwrap(raw)
        if not request.custom or not request.type.startswith(DYNAMIC_PREFIX):
            state = news  # components (and anything else) pass their inputs through
            self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, "", state)
            obj = _sync_await(rpc.serialize_properties(state, {}))
            return resource_pb2.RegisterResourceResponse(urn=urn, object=obj)
        try:
            id_, outs, secret_outs = self._register(urn, request, news, secrets)
        except BaseException as exc:
            self.error = self.error or exc
            raise
        secret_outs |= set(request.additionalSecretOutputs)
        shown = {k: (rpc.wrap_rpc_secret(v) if k in secret_outs else v) for k, v in outs.items() if k != PROVIDER_KEY}
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_, shown)
        obj = _sync_await(rpc.serialize_properties(shown, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=obj)

    def _register(
        self, urn: str, request: Any, news: dict[str, Any], secrets: set[str]
    ) -> tuple[str, dict[str, Any], set[str]]:
        engine = self.engine
        blob = news[PROVIDER_KEY]
        provider = engine.provider(blob)
        old = engine.state.get(urn)
        checked = provider.check(old.inputs if old else {}, news)
        if checked.failures:
            raise CheckFailed(f"{request.type.rsplit(':', 1)[-1]} {request.name!r}",
                              [(f.property, f.reason) for f in checked.failures])  # fmt: skip
        inputs = {**checked.inputs, PROVIDER_KEY: blob}
        secrets = secrets | set(request.additionalSecretOutputs)

        if self.preview:
            if old is None:
                self.steps.append(Step("import" if request.importId else "create", urn))
                return "", {**inputs}, secrets
            diff = provider.diff(old.id, old.outputs, inputs)
            op = "replace" if diff.replaces else ("update" if diff.changes else "same")
            self.steps.append(Step(op, urn, list(diff.replaces or [])))
            return old.id, {**old.outputs, **inputs}, secrets

        if old is None and request.importId:
            read = provider.read(request.importId, inputs)
            if not read.id:
                raise LookupError(f"{request.name}: there is no {request.type} with id {request.importId!r} to import")
            outs = _plain(read.outs)
            diff = provider.diff(read.id, outs, inputs)
            if diff.changes:
                raise ValueError(f"{request.name}: the program's inputs differ from the imported resource; import "
                                 f"with inputs that match it, then change them")  # fmt: skip
            self._keep(urn, request, read.id, inputs, outs, secrets)
            self.steps.append(Step("import", urn))
            return read.id, outs, secrets

        if old is not None:
            diff = provider.diff(old.id, old.outputs, inputs)
            if diff.replaces:
                if diff.delete_before_replace:
                    provider.delete(old.id, {**old.outputs, PROVIDER_KEY: old.inputs[PROVIDER_KEY]})
                    created = provider.create(inputs)
                else:
                    created = provider.create(inputs)
                    provider.delete(old.id, {**old.outputs, PROVIDER_KEY: old.inputs[PROVIDER_KEY]})
                outs = _plain(created.outs)
                self._keep(urn, request, created.id, inputs, outs, secrets)
                self.steps.append(Step("replace", urn, list(diff.replaces)))
                return created.id, outs, secrets
            if diff.changes:
                updated = provider.update(old.id, old.outputs, inputs)
                outs = _plain(updated.outs)
                self._keep(urn, request, old.id, inputs, outs, secrets)
                self.steps.append(Step("update", urn))
                return old.id, outs, secrets
            self._keep(urn, request, old.id, inputs, old.outputs, secrets)
            self.steps.append(Step("same", urn))
            return old.id, old.outputs, secrets

        created = provider.create(inputs)
        outs = _plain(created.outs)
        self._keep(urn, request, created.id, inputs, outs, secrets)
        self.steps.append(Step("create", urn))
        return created.id, outs, secrets

    def _keep(self, urn: str, request: Any, id_: str, inputs: dict[str, Any], outs: dict[str, Any],
              secrets: set[str]) -> None:  # fmt: skip
        with self.engine._lock:
            self.engine.state[urn] = Record(urn, request.type, request.name, id_, inputs, outs, set(secrets))

    def ReadResource(self, request: Any) -> Any:
        """``Resource.get``-style reads (``opts=ResourceOptions(id=...)``): read, never managed."""
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        urn = self.make_urn(request.parent, request.type, request.name)
        inputs, _ = _unwrap(rpc.deserialize_properties(request.properties, keep_unknowns=True))
        provider = self.engine.provider(inputs[PROVIDER_KEY])
        read = provider.read(request.id, inputs)
        if not read.id:
            error = LookupError(f"{request.name}: there is no {request.type} with id {request.id!r}")
            self.error = self.error or error
            raise error
        outs = _plain(read.outs)
        with self.engine._lock:
            self.engine.state[urn] = Record(urn, request.type, request.name, read.id, {**inputs}, outs, external=True)
        self.steps.append(Step("read", urn))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, read.id, outs)
        return resource_pb2.ReadResourceResponse(urn=urn, properties=_sync_await(rpc.serialize_properties(outs, {})))


def program_file(path: str | Path) -> Callable[[], None]:
    """A program written as ``__main__.py`` is (statements at top level), run as ``pulumi up`` runs it."""

    def run() -> None:
        runpy.run_path(str(path), run_name="__main__")

    return run
