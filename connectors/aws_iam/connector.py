"""The AWS IAM connector: IAM users, and the groups and managed policies they hold (see ``README.md``).

* Accounts are IAM users, keyed by user name.
* Entitlements: type ``group`` (``group:<name>``, role ``member``) and type ``policy`` (``policy:<arn>``, role
  ``attached``). A group's ``implies`` lists the managed policies attached to it.
* Every listing follows ``Marker``/``IsTruncated`` with boto3 paginators, ``pageSize`` items per call, and sends
  each page on before asking for the next. Users come from ``GetAccountAuthorizationDetails`` (their groups
  and policies in the same pages), so listing 10,000 users takes a few dozen calls, not one per user.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bex
from botocore.config import Config

from connectors.sdk import (
    ConfigError,
    Connector,
    ConnectorError,
    InputError,
    ObjectNotFound,
    as_list,
    changes,
    one_line,
)
from connectors.sdk.config import config_int as _int
from connectors.sdk.config import config_text as _text

connector = Connector(Path(__file__).parent)

GROUP_ATTRIBUTE = "groups"
POLICY_ATTRIBUTE = "policies"
ATTRIBUTE_KIND = {GROUP_ATTRIBUTE: "group", POLICY_ATTRIBUTE: "policy"}
SESSION_NAME = "access-governance-connector"


@dataclass(frozen=True)
class Settings:
    option: str
    access_key: str | None
    secret_key: str | None
    role_arn: str | None
    external_id: str | None
    region: str
    endpoint_url: str | None
    path_prefix: str
    page_size: int
    all_aws_policies: bool
    provisioning: bool
    timeout: int


def settings(config: dict[str, Any]) -> Settings:
    option = _text(config, "connectionOption") or "accessKey"
    prefix = _text(config, "pathPrefix") or "/"
    if not prefix.startswith("/") or not prefix.endswith("/"):
        raise ConfigError("config item 'pathPrefix' must start and end with /, e.g. /app/", item="pathPrefix")
    return Settings(
        option=option,
        access_key=_text(config, "accessKeyId"),
        secret_key=config.get("secretAccessKey") or None,
        role_arn=_text(config, "roleArn") if option == "assumeRole" else None,
        external_id=_text(config, "externalId"),
        region=_text(config, "region") or "us-east-1",
        endpoint_url=_text(config, "endpointUrl"),
        path_prefix=prefix,
        page_size=_int(config, "pageSize", 500, 1, 1000),
        all_aws_policies=config.get("listAllAwsPolicies") is True,
        provisioning=config.get("provisioning") is True,
        timeout=_int(config, "timeout", 30, 1, 600),
    )


def _error(exc: Exception, action: str = "") -> tuple[str, str]:
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        return err.get("Code", ""), one_line(err.get("Message", ""))
    return type(exc).__name__, one_line(exc)


def _where(s: Settings) -> str:
    return s.endpoint_url or f"AWS ({s.region})"


def _connect_message(s: Settings, exc: Exception, step: str) -> str:
    code, message = _error(exc)
    where = _where(s)
    if isinstance(exc, bex.EndpointConnectionError) or isinstance(exc, bex.ConnectTimeoutError):
        return f"cannot connect to {where}: {'no answer' if 'timeout' in code.lower() else 'connection refused or unknown host'}"
    if isinstance(exc, bex.NoCredentialsError):
        return "no AWS credentials: set accessKeyId and secretAccessKey, or give the portal's host a role"
    if code in ("SignatureDoesNotMatch", "IncompleteSignature"):
        return f"authentication failed at {where}: wrong secret access key for access key {s.access_key}"
    if code in ("InvalidClientTokenId", "UnrecognizedClientException"):
        return f"authentication failed at {where}: unknown access key {s.access_key}"
    if code == "ExpiredToken":
        return f"authentication failed at {where}: the credentials have expired"
    if code == "AccessDenied" and step == "assume":
        return f"cannot assume role {s.role_arn}: access denied ({message})"
    return f"{step} failed at {where}: {code}: {message}"


class Iam:
    """An IAM client from the settings (assuming the role first for the assume-role option)."""

    def __init__(self, s: Settings):
        self.s = s
        cfg = Config(
            connect_timeout=min(s.timeout, 10),
            read_timeout=s.timeout,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        base = {"region_name": s.region, "endpoint_url": s.endpoint_url, "config": cfg}
        creds: dict[str, Any] = {}
        if s.access_key or s.secret_key:
            creds = {"aws_access_key_id": s.access_key, "aws_secret_access_key": s.secret_key}
        session = boto3.session.Session()
        if s.option == "assumeRole":
            if not s.role_arn:
                raise ConfigError("missing required config item 'roleArn' (Role ARN)", item="roleArn")
            sts = session.client("sts", **base, **creds)
            params = {"RoleArn": s.role_arn, "RoleSessionName": SESSION_NAME}
            if s.external_id:
                params["ExternalId"] = s.external_id
            try:
                temp = sts.assume_role(**params)["Credentials"]
            except (bex.BotoCoreError, bex.ClientError) as exc:
                raise ConnectorError(_connect_message(s, exc, "assume")) from None
            creds = {
                "aws_access_key_id": temp["AccessKeyId"],
                "aws_secret_access_key": temp["SecretAccessKey"],
                "aws_session_token": temp["SessionToken"],
            }
        self.sts = session.client("sts", **base, **creds)
        self.client = session.client("iam", **base, **creds)

    def pages(self, operation: str, **params: Any) -> Iterator[dict]:
        """Pages of a list operation, following Marker/IsTruncated with ``pageSize`` items per call."""
        paginator = self.client.get_paginator(operation)
        yield from paginator.paginate(**params, PaginationConfig={"PageSize": self.s.page_size})


@contextlib.contextmanager
def connect(config: dict[str, Any]) -> Iterator[Iam]:
    s = settings(config)
    iam = Iam(s)
    try:
        yield iam
    except bex.ClientError as exc:
        code, message = _error(exc)
        if code in ("AccessDenied", "AccessDeniedException"):
            raise ConnectorError(f"access denied: {message}") from None
        if code == "NoSuchEntity":
            raise ObjectNotFound(message) from None
        raise ConnectorError(f"{code}: {message}") from None
    except bex.BotoCoreError as exc:
        raise ConnectorError(_connect_message(s, exc, "request")) from None


# -- objects -----------------------------------------------------------------------------------------


def _date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value) if value else None


def account_object(user: dict[str, Any], groups: list[str], policies: list[str]) -> dict[str, Any]:
    name = user["UserName"]
    tags = {t["Key"]: t["Value"] for t in user.get("Tags") or []}
    return {
        "identity": name,
        "key": {"simple": {"id": name}},
        "attributes": {
            "userName": name,
            "userId": user.get("UserId"),
            "arn": user.get("Arn"),
            "path": user.get("Path"),
            "created": _date(user.get("CreateDate")),
            "passwordLastUsed": _date(user.get("PasswordLastUsed")),
            "inlinePolicies": sorted(p["PolicyName"] for p in user.get("UserPolicyList") or []),
            "tags": [f"{k}={v}" for k, v in sorted(tags.items())],
            GROUP_ATTRIBUTE: sorted(f"group:{g}" for g in groups),
            POLICY_ATTRIBUTE: sorted(f"policy:{p}" for p in policies),
        },
    }


def group_entitlement(group: dict[str, Any], policies: list[str]) -> dict[str, Any]:
    name = group["GroupName"]
    identity = f"group:{name}"
    return {
        "identity": identity,
        "key": {"simple": {"id": identity}},
        "type": "group",
        "attributes": {
            "id": identity,
            "name": name,
            "arn": group.get("Arn"),
            "path": group.get("Path"),
            "created": _date(group.get("CreateDate")),
            "implies": sorted(f"policy:{p}" for p in policies),
        },
    }


def policy_entitlement(policy: dict[str, Any]) -> dict[str, Any]:
    arn = policy["Arn"]
    identity = f"policy:{arn}"
    return {
        "identity": identity,
        "key": {"simple": {"id": identity}},
        "type": "policy",
        "attributes": {
            "id": identity,
            "name": policy["PolicyName"],
            "arn": arn,
            "path": policy.get("Path"),
            "awsManaged": arn.split(":")[4] == "aws",
            "attachments": policy.get("AttachmentCount"),
            "description": policy.get("Description"),
            "role": "attached",
        },
    }


def parse_entitlement(identity: Any) -> tuple[str, str]:
    if isinstance(identity, str):
        kind, sep, rest = identity.partition(":")
        if sep and rest and kind in ("group", "policy"):
            return kind, rest
    raise InputError(
        f"{identity!r} is not an entitlement of this connector (expected group:<name> or policy:<arn>)"
    )


def read_account(iam: Iam, name: str) -> dict[str, Any]:
    try:
        user = iam.client.get_user(UserName=name)["User"]
    except bex.ClientError as exc:
        if _error(exc)[0] == "NoSuchEntity":
            raise ObjectNotFound(f"no account {name!r}: no such IAM user") from None
        raise
    if not user.get("Path", "/").startswith(iam.s.path_prefix):
        raise ObjectNotFound(
            f"no account {name!r}: outside this source's scope (pathPrefix {iam.s.path_prefix})"
        )
    groups = [
        g["GroupName"] for page in iam.pages("list_groups_for_user", UserName=name) for g in page["Groups"]
    ]
    policies = [
        p["PolicyArn"]
        for page in iam.pages("list_attached_user_policies", UserName=name)
        for p in page["AttachedPolicies"]
    ]
    inline = [
        {"PolicyName": n}
        for page in iam.pages("list_user_policies", UserName=name)
        for n in page["PolicyNames"]
    ]
    tags = iam.client.list_user_tags(UserName=name).get("Tags", [])
    return account_object({**user, "UserPolicyList": inline, "Tags": tags}, groups, policies)


# -- handlers: reading -------------------------------------------------------------------------------


@connector.command("std:test-connection")
def test_connection(context, input, res):
    s = settings(context.config)
    iam = Iam(s)
    try:
        iam.sts.get_caller_identity()
    except (bex.BotoCoreError, bex.ClientError) as exc:
        raise ConnectorError(_connect_message(s, exc, "sts:GetCallerIdentity")) from None
    checks = [
        (
            "iam:GetAccountAuthorizationDetails",
            lambda: iam.client.get_account_authorization_details(Filter=["User"], MaxItems=1),
        ),
        ("iam:ListPolicies", lambda: iam.client.list_policies(Scope="Local", MaxItems=1)),
    ]
    for action, call in checks:
        try:
            call()
        except bex.ClientError as exc:
            code, message = _error(exc)
            if code in ("AccessDenied", "AccessDeniedException"):
                raise ConnectorError(
                    f"the credentials may not call {action}: attach IAMReadOnlyAccess (or allow {action})"
                ) from None
            raise ConnectorError(_connect_message(s, exc, action)) from None
        except bex.BotoCoreError as exc:
            raise ConnectorError(_connect_message(s, exc, action)) from None
    res.send({})


@connector.command("std:account:list")
def account_list(context, input, res):
    with connect(context.config) as iam:
        for page in iam.pages("get_account_authorization_details", Filter=["User"]):
            for user in page.get("UserDetailList", []):
                if not user.get("Path", "/").startswith(iam.s.path_prefix):
                    continue
                policies = [p["PolicyArn"] for p in user.get("AttachedManagedPolicies") or []]
                res.send(account_object(user, user.get("GroupList") or [], policies))
            res.keep_alive()


@connector.command("std:account:read")
def account_read(context, input, res):
    with connect(context.config) as iam:
        res.send(read_account(iam, input["identity"]))


def _policies(iam: Iam) -> Iterator[dict[str, Any]]:
    yield from (p for page in iam.pages("list_policies", Scope="Local") for p in page["Policies"])
    only_attached = not iam.s.all_aws_policies
    for page in iam.pages("list_policies", Scope="AWS", OnlyAttached=only_attached):
        yield from page["Policies"]


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    with connect(context.config) as iam:
        if input.get("type") in (None, "group"):
            for page in iam.pages("get_account_authorization_details", Filter=["Group"]):
                for group in page.get("GroupDetailList", []):
                    policies = [p["PolicyArn"] for p in group.get("AttachedManagedPolicies") or []]
                    res.send(group_entitlement(group, policies))
                res.keep_alive()
        if input.get("type") in (None, "policy"):
            for policy in _policies(iam):
                res.send(policy_entitlement(policy))


@connector.command("std:entitlement:read")
def entitlement_read(context, input, res):
    kind, rest = parse_entitlement(input["identity"])
    with connect(context.config) as iam:
        try:
            if kind == "group":
                group = iam.client.get_group(GroupName=rest, MaxItems=1)["Group"]
                policies = [
                    p["PolicyArn"]
                    for page in iam.pages("list_attached_group_policies", GroupName=rest)
                    for p in page["AttachedPolicies"]
                ]
                res.send(group_entitlement(group, policies))
            else:
                res.send(policy_entitlement(iam.client.get_policy(PolicyArn=rest)["Policy"]))
        except bex.ClientError as exc:
            if _error(exc)[0] in ("NoSuchEntity", "InvalidInput"):
                raise ObjectNotFound(f"no entitlement {input['identity']!r}: {_error(exc)[1]}") from None
            raise


# -- provisioning ------------------------------------------------------------------------------------


def _provisioning(s: Settings) -> None:
    if not s.provisioning:
        raise ConnectorError(
            "provisioning is turned off for this source: set the config item 'provisioning' to true "
            "(the credentials need iam:CreateUser, iam:DeleteUser, iam:AddUserToGroup… see the documentation)"
        )


def _grant(iam: Iam, name: str, identity: str, *, revoke: bool) -> None:
    kind, rest = parse_entitlement(identity)
    c = iam.client
    if kind == "group":
        (c.remove_user_from_group if revoke else c.add_user_to_group)(GroupName=rest, UserName=name)
    else:
        (c.detach_user_policy if revoke else c.attach_user_policy)(UserName=name, PolicyArn=rest)


def _values(attribute: str, kind: str, values: Any) -> list[str]:
    out = [str(v) for v in as_list(values)]
    for v in out:
        if parse_entitlement(v)[0] != kind:
            raise InputError(f"attribute {attribute!r} holds {kind}:… entitlements, not {v!r}")
    return out


def _apply(iam: Iam, name: str, grant: list[str], revoke: list[str]) -> None:
    """Grant and revoke; on failure undo what this call did and raise one clear error."""
    done: list[tuple[str, bool]] = []
    current = None
    try:
        for identity, is_revoke in [(i, True) for i in revoke] + [(i, False) for i in grant]:
            current = (identity, is_revoke)
            _grant(iam, name, identity, revoke=is_revoke)
            done.append(current)
    except bex.ClientError as exc:
        for identity, was_revoke in reversed(done):
            with contextlib.suppress(bex.ClientError):
                _grant(iam, name, identity, revoke=not was_revoke)
        code, message = _error(exc)
        identity, is_revoke = current
        verb = "revoke" if is_revoke else "grant"
        if code == "NoSuchEntity":
            raise ObjectNotFound(f"cannot {verb} {identity} for {name}: {message}") from None
        raise ConnectorError(f"cannot {verb} {identity} for {name}: {code}: {message}") from None


@connector.command("std:account:create")
def account_create(context, input, res):
    attributes = dict(input.get("attributes") or {})
    name = input.get("identity") or attributes.get("userName")
    if not isinstance(name, str) or not name:
        raise InputError("std:account:create needs an identity (the IAM user name)")
    wanted = []
    for attribute, kind in ATTRIBUTE_KIND.items():
        wanted += _values(attribute, kind, attributes.pop(attribute, None))
    with connect(context.config) as iam:
        _provisioning(iam.s)
        path = attributes.get("path") or iam.s.path_prefix
        if not str(path).startswith(iam.s.path_prefix):
            raise InputError(f"path {path!r} is outside this source's scope (pathPrefix {iam.s.path_prefix})")
        params: dict[str, Any] = {"UserName": name, "Path": path}
        tags = [t.partition("=") for t in as_list(attributes.get("tags"))]
        if tags:
            params["Tags"] = [{"Key": k, "Value": v} for k, _, v in tags]
        try:
            iam.client.create_user(**params)
        except bex.ClientError as exc:
            code, message = _error(exc)
            if code == "EntityAlreadyExists":
                raise ConnectorError(
                    f"cannot create {name}: an IAM user with that name already exists"
                ) from None
            raise ConnectorError(f"cannot create {name}: {code}: {message}") from None
        try:
            _apply(iam, name, list(dict.fromkeys(wanted)), [])
        except ConnectorError:
            with contextlib.suppress(bex.ClientError):
                iam.client.delete_user(UserName=name)
            raise
        res.send(read_account(iam, name))


@connector.command("std:account:update")
def account_update(context, input, res):
    todo = changes(input)
    name = input["identity"]
    with connect(context.config) as iam:
        _provisioning(iam.s)
        current = read_account(iam, name)["attributes"]
        held = current[GROUP_ATTRIBUTE] + current[POLICY_ATTRIBUTE]
        target = list(held)
        for change in todo:
            kind = ATTRIBUTE_KIND.get(change.attribute)
            if kind is None:
                raise InputError(
                    f"attribute {change.attribute!r} cannot be changed; only groups and policies"
                )
            values = _values(change.attribute, kind, change.values)
            if change.op == "Set":  # replaces the groups or the policies, not both
                target = [v for v in target if parse_entitlement(v)[0] != kind] + list(dict.fromkeys(values))
            else:
                target = change.apply(target, values)
        _apply(iam, name, [v for v in target if v not in held], [v for v in held if v not in target])
        res.send(read_account(iam, name))


def remove_everything(iam: Iam, name: str) -> list[str]:
    """Detach and delete what an IAM user holds, so that DeleteUser succeeds. Returns what was removed."""
    c, removed = iam.client, []
    for page in iam.pages("list_groups_for_user", UserName=name):
        for g in page["Groups"]:
            c.remove_user_from_group(GroupName=g["GroupName"], UserName=name)
            removed.append(f"group {g['GroupName']}")
    for page in iam.pages("list_attached_user_policies", UserName=name):
        for p in page["AttachedPolicies"]:
            c.detach_user_policy(UserName=name, PolicyArn=p["PolicyArn"])
            removed.append(f"policy {p['PolicyArn']}")
    for page in iam.pages("list_user_policies", UserName=name):
        for policy in page["PolicyNames"]:
            c.delete_user_policy(UserName=name, PolicyName=policy)
            removed.append(f"inline policy {policy}")
    for page in iam.pages("list_access_keys", UserName=name):
        for key in page["AccessKeyMetadata"]:
            c.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
            removed.append(f"access key {key['AccessKeyId']}")
    for page in iam.pages("list_signing_certificates", UserName=name):
        for cert in page["Certificates"]:
            c.delete_signing_certificate(UserName=name, CertificateId=cert["CertificateId"])
            removed.append("signing certificate")
    for key in c.list_ssh_public_keys(UserName=name).get("SSHPublicKeys", []):
        c.delete_ssh_public_key(UserName=name, SSHPublicKeyId=key["SSHPublicKeyId"])
        removed.append("SSH public key")
    for page in iam.pages("list_mfa_devices", UserName=name):
        for device in page["MFADevices"]:
            c.deactivate_mfa_device(UserName=name, SerialNumber=device["SerialNumber"])
            removed.append("MFA device")
    with contextlib.suppress(bex.ClientError):  # NoSuchEntity when the user has no console password
        c.delete_login_profile(UserName=name)
        removed.append("console password")
    return removed


@connector.command("std:account:delete")
def account_delete(context, input, res):
    name = input["identity"]
    with connect(context.config) as iam:
        _provisioning(iam.s)
        arn = read_account(iam, name)["attributes"]["arn"]
        caller = iam.sts.get_caller_identity().get("Arn")
        if caller == arn:
            raise ConnectorError(f"refusing to delete {name}: it is the IAM user this source connects as")
        try:
            remove_everything(iam, name)
            iam.client.delete_user(UserName=name)
        except bex.ClientError as exc:
            code, message = _error(exc)
            raise ConnectorError(f"cannot delete {name}: {code}: {message}") from None
    res.send({})
