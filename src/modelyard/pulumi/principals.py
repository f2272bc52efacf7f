"""Users, service accounts and their API keys.

Secrets stay secret: a user's ``password`` is taken as a Pulumi secret and kept only as one,
and a key's ``secret`` (shown by the registry once, at creation) is an output Pulumi encrypts
in the state (``additional_secret_outputs``). Neither is ever read back from the registry.
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, UpdateResult

from modelyard.pulumi.provider import Arg, RegistryProvider
from modelyard.pulumi.resource import RegistryResource
from modelyard.schemas import admin as schemas


def _pattern(pattern: str, what: str) -> Any:
    compiled = re.compile(pattern)

    def check(value: str) -> str | None:
        return None if compiled.match(value) else f"{value!r} is not a valid {what}"

    return check


def _password(value: str) -> str | None:
    return None if 8 <= len(value) <= 1024 else "a password has 8 to 1024 characters"


class UserProvider(RegistryProvider):
    TYPE = "modelyard:User"
    ARGS = {
        "name": Arg("str", required=True, replaces=True, validate=_pattern(schemas.USER_NAME_PATTERN, "user name")),
        "email": Arg("str", required=True, replaces=True, validate=_pattern(schemas.EMAIL_PATTERN, "email address")),
        "password": Arg("str", required=True, validate=_password),
    }
    OUTPUTS = ("member", "disabled", "time_created")
    DELETE_BEFORE_REPLACE = True

    def _find(self, name: str) -> schemas.User | None:
        return next((u for u in self.call("read", self.client.list_users) if u.name == name), None)

    @staticmethod
    def _outs(user: schemas.User) -> dict[str, Any]:
        return {"name": user.name, "email": user.email, "member": user.member, "disabled": user.disabled,
                "time_created": user.time_created.isoformat()}  # fmt: skip

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = schemas.UserCreate(name=props["name"], email=props["email"], password=props["password"])
        user = self.call(f"{props['name']} create", self.client.create_user, spec)
        return CreateResult(user.name, {**self._outs(user), "password": props["password"]})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        user = self._find(id_)
        if user is None:
            return self.gone()
        # The password can't be read back: keep what the state had.
        outs = {**self._outs(user), "password": props.get("password")}
        return ReadResult(user.name, outs, self.inputs_of(outs))

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.call(f"{id_} password", self.client.set_password, id_, news["password"])
        user = self._find(id_)
        if user is None:
            raise AssertionError(f"user {id_} vanished during the update")
        return UpdateResult({**self._outs(user), "password": news["password"]})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        if self._find(id_) is not None:
            self.call(f"{id_} delete", self.client.delete_user, id_)


class User(RegistryResource, module="modelyard", name="User"):
    """A user with a password (pass it as a secret: ``config.require_secret("alicePassword")``;
    it is made one anyway). Changing the password updates it in place; name or email replace."""

    PROVIDER = UserProvider
    SECRET_OUTPUTS = ["password"]
    name: pulumi.Output[str]
    email: pulumi.Output[str]
    password: pulumi.Output[str]
    member: pulumi.Output[str]
    disabled: pulumi.Output[bool]
    time_created: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        name: pulumi.Input[str] | None = None,
        email: pulumi.Input[str] | None = None,
        password: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        secret = None if password is None else pulumi.Output.secret(password)
        super().__init__(resource_name, {"name": name, "email": email, "password": secret, **unknown}, opts)


class ServiceAccountProvider(RegistryProvider):
    TYPE = "modelyard:ServiceAccount"
    ARGS = {
        "name": Arg("str", required=True, replaces=True,
                    validate=_pattern(schemas.SERVICE_ACCOUNT_NAME_PATTERN, "service account name")),
        "description": Arg("str", replaces=True),
    }  # fmt: skip
    OUTPUTS = ("member", "disabled", "time_created")
    DELETE_BEFORE_REPLACE = True

    def _find(self, name: str) -> schemas.ServiceAccount | None:
        return next((a for a in self.call("read", self.client.list_service_accounts) if a.name == name), None)

    @staticmethod
    def _outs(account: schemas.ServiceAccount) -> dict[str, Any]:
        return {"name": account.name, "description": account.description, "member": account.member,
                "disabled": account.disabled, "time_created": account.time_created.isoformat()}  # fmt: skip

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = schemas.ServiceAccountCreate(name=props["name"], description=props.get("description", ""))
        account = self.call(f"{props['name']} create", self.client.create_service_account, spec)
        return CreateResult(account.name, self._outs(account))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        account = self._find(id_)
        if account is None:
            return self.gone()
        outs = self._outs(account)
        return ReadResult(account.name, outs, self.inputs_of(outs))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        if self._find(id_) is not None:
            self.call(f"{id_} delete", self.client.delete_service_account, id_)


class ServiceAccount(RegistryResource, module="modelyard", name="ServiceAccount"):
    """A service account (``ci-bot@acme``); ``member`` is how bindings name it."""

    PROVIDER = ServiceAccountProvider
    name: pulumi.Output[str]
    description: pulumi.Output[str]
    member: pulumi.Output[str]
    disabled: pulumi.Output[bool]
    time_created: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        name: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] | None = None,
        **unknown: Any,
    ) -> None:
        super().__init__(resource_name, {"name": name, "description": description, **unknown}, opts)


def _days(value: int) -> str | None:
    return None if 1 <= value <= 3650 else "expires_in_days is 1 to 3650"


class ServiceAccountKeyProvider(RegistryProvider):
    TYPE = "modelyard:ServiceAccountKey"
    ARGS = {
        "service_account": Arg("str", required=True, replaces=True),
        "description": Arg("str", replaces=True),
        "expires_in_days": Arg("int", replaces=True, validate=_days),
    }
    OUTPUTS = ("key_id", "secret", "principal", "time_created", "time_expires")

    @staticmethod
    def _principal(props: dict[str, Any]) -> str:
        account = str(props["service_account"])
        return account if account.startswith("serviceAccount:") else f"serviceAccount:{account}"

    def _outs(self, props: dict[str, Any], key: schemas.ApiKey) -> dict[str, Any]:
        return {
            "service_account": props["service_account"],
            "description": key.description,
            "expires_in_days": props.get("expires_in_days"),
            "key_id": key.id,
            "principal": key.principal,
            "time_created": key.time_created.isoformat(),
            "time_expires": key.time_expires.isoformat() if key.time_expires else None,
        }

    def create(self, props: dict[str, Any]) -> CreateResult:
        principal = self._principal(props)
        days = props.get("expires_in_days")
        spec = schemas.ApiKeyCreate(
            description=props.get("description", ""), expires_in_days=int(days) if days else None
        )
        key = self.call(f"{principal} key create", self.client.create_api_key, principal, spec)
        return CreateResult(f"{principal} {key.id}", {**self._outs(props, key), "secret": key.secret})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        principal, _, key_id = id_.rpartition(" ")
        keys = self.find(self.client.list_api_keys, principal) or []
        key = next((k for k in keys if k.id == key_id and k.time_revoked is None), None)
        if key is None:
            return self.gone()
        account = principal.removeprefix("serviceAccount:")
        outs = {**self._outs({**props, "service_account": props.get("service_account") or account}, key),
                "secret": props.get("secret")}  # fmt: skip
        return ReadResult(id_, outs, self.inputs_of(outs))

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        principal, _, key_id = id_.rpartition(" ")
        keys = self.find(self.client.list_api_keys, principal) or []
        if any(k.id == key_id and k.time_revoked is None for k in keys):
            self.call(f"{principal} key revoke", self.client.revoke_api_key, principal, key_id)


class ServiceAccountKey(RegistryResource, module="modelyard", name="ServiceAccountKey"):
    """An API key of a service account: ``secret`` (a Pulumi secret) is the password of
    ``docker login -u ACCOUNT``. Any change makes a new key and revokes the old one."""

    PROVIDER = ServiceAccountKeyProvider
    SECRET_OUTPUTS = ["secret"]
    service_account: pulumi.Output[str]
    key_id: pulumi.Output[str]
    secret: pulumi.Output[str]
    principal: pulumi.Output[str]
    time_created: pulumi.Output[str]
    time_expires: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        opts: pulumi.ResourceOptions | None = None,
        *,
        service_account: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] | None = None,
        expires_in_days: pulumi.Input[int] | None = None,
        **unknown: Any,
    ) -> None:
        args = {"service_account": service_account, "description": description, "expires_in_days": expires_in_days,
                **unknown}  # fmt: skip
        super().__init__(resource_name, args, opts)
