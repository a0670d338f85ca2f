"""The SCIM 2.0 connector: Users and Groups of any SCIM 2.0 service provider (see ``README.md``).

* Accounts are Users, identified by their SCIM ``id``. Entitlements (type ``group``) are Groups, each a
  resource with the single role ``member``.
* Listings page with ``startIndex``/``count`` (RFC 7644 §3.4.2.4), ``pageSize`` resources per request.
  Deltas filter on ``meta.lastModified ge "<since>"``.
* Group membership is read from the Groups' ``members`` (``membershipSource: groups``, the default: many
  servers leave ``User.groups`` empty) or from ``User.groups`` (``user``), and changed with PATCH on the
  Group (``add`` / ``remove`` of ``members``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from connectors.sdk import (
    ConfigError,
    Connector,
    ConnectorError,
    InputError,
    ObjectNotFound,
    StateError,
    as_list,
    changes,
    one_line,
)
from connectors.sdk.config import config_int as _int
from connectors.sdk.config import config_text as _text

connector = Connector(Path(__file__).parent)

ENTITLEMENT_TYPE = "group"
GROUP_ATTRIBUTE = "groups"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONTENT_TYPE = "application/scim+json"
SOURCES = ("groups", "user")

# Account attribute -> SCIM attribute path for PATCH (emails are replaced as a whole).
PATHS = {
    "userName": "userName",
    "displayName": "displayName",
    "givenName": "name.givenName",
    "familyName": "name.familyName",
    "externalId": "externalId",
    "title": "title",
    "active": "active",
    "password": "password",
}
SETTABLE = frozenset(PATHS) | {"email", GROUP_ATTRIBUTE}


@dataclass(frozen=True)
class Settings:
    base_url: str
    auth: str
    token: str | None
    username: str | None
    password: str | None
    ca_certificate: str | None
    timeout: float
    page_size: int
    source: str
    user_filter: str | None
    group_filter: str | None
    provisioning: bool

    @property
    def host(self) -> str:
        parts = urlsplit(self.base_url)
        return parts.netloc or self.base_url


def settings(config: dict[str, Any]) -> Settings:
    auth = config.get("connectionOption") or "bearer"
    base_url = (_text(config, "baseUrl") or "").rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError("config item 'baseUrl' must be an http:// or https:// URL", item="baseUrl")
    source = _text(config, "membershipSource") or "groups"
    if source not in SOURCES:
        raise ConfigError(
            f"config item 'membershipSource' must be groups or user, got {source!r}", item="membershipSource"
        )
    provisioning = config.get("provisioning", False)
    return Settings(
        base_url=base_url,
        auth=auth,
        token=config.get("token") or None,
        username=_text(config, "username"),
        password=config.get("password") or None,
        ca_certificate=_text(config, "caCertificate"),
        timeout=float(_int(config, "timeout", 30, 1, 3600)),
        page_size=_int(config, "pageSize", 100, 1, 1000),
        source=source,
        user_filter=_text(config, "userFilter"),
        group_filter=_text(config, "groupFilter"),
        provisioning=provisioning is True or str(provisioning).lower() == "true",
    )


# -- the client ---------------------------------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    """The SCIM error ``detail`` (or the start of the body), on one line."""
    try:
        body = response.json()
        text = body.get("detail") or body.get("scimType") or ""
    except (ValueError, AttributeError):
        text = response.text[:200]
    return one_line(text)[:200]


class Client:
    def __init__(self, s: Settings):
        self.s = s
        headers = {"Accept": CONTENT_TYPE, "Content-Type": CONTENT_TYPE}
        auth = None
        if s.auth == "basic":
            if not s.username or not s.password:
                raise ConfigError(
                    "config items 'username' and 'password' are needed for basic authentication"
                )
            auth = httpx.BasicAuth(s.username, s.password)
        else:
            if not s.token:
                raise ConfigError(
                    "config item 'token' is needed for bearer-token authentication", item="token"
                )
            headers["Authorization"] = f"Bearer {s.token}"
        verify: Any = True
        if s.ca_certificate:
            if "-----BEGIN" not in s.ca_certificate:
                raise ConfigError(
                    "config item 'caCertificate' must be a PEM certificate", item="caCertificate"
                )
            verify = ssl.create_default_context(cadata=s.ca_certificate)
        self.http = httpx.Client(
            base_url=s.base_url + "/", headers=headers, auth=auth, timeout=s.timeout, verify=verify
        )

    def close(self) -> None:
        self.http.close()

    def _hide(self, text: Any) -> str:
        return one_line(text, self.s.token, self.s.password)

    def request(
        self, method: str, path: str, *, action: str, params=None, body=None, ok=(200,)
    ) -> httpx.Response:
        where = f"{self.s.base_url}/{path}"
        try:
            response = self.http.request(method, path, params=params, json=body)
        except httpx.ConnectError as exc:
            text = str(exc).lower()
            if (
                "name or service not known" in text
                or "nodename nor servname" in text
                or "name resolution" in text
            ):
                reason = f"unknown host {urlsplit(self.s.base_url).hostname}"
            elif "refused" in text:
                reason = "connection refused"
            elif "certificate" in text:
                reason = "the server certificate is not trusted (see the config item 'caCertificate')"
            else:
                reason = self._hide(exc)[:200]
            raise ConnectorError(f"cannot connect to {self.s.host}: {reason}") from None
        except httpx.TimeoutException:
            raise ConnectorError(
                f"cannot connect to {self.s.host}: no answer within {self.s.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            raise ConnectorError(f"{action}: {self._hide(exc)[:200]}") from None
        if response.status_code in ok:
            return response
        code = response.status_code
        detail = self._hide(_detail(response))
        suffix = f": {detail}" if detail else ""
        if code == 401:
            what = "username and password" if self.s.auth == "basic" else "bearer token"
            raise ConnectorError(
                f"authentication failed at {self.s.host}: the server refused the {what} (401)"
            )
        if code == 403:
            raise ConnectorError(
                f"{action}: the service account lacks the permission (403 Forbidden){suffix}"
            )
        if code == 404 and method == "GET" and "/" not in path.strip("/"):
            raise ConnectorError(
                f"no SCIM endpoint at {where} (404): check the base URL (it usually ends in /v2 or /scim/v2)"
            )
        if code == 404:
            raise ObjectNotFound(f"{action}: not found (404){suffix}")
        if code == 409:
            raise ConnectorError(f"{action}: conflict (409){suffix}")
        if code == 400:
            raise InputError(f"{action}: the server refused the request (400){suffix}")
        raise ConnectorError(f"{action}: HTTP {code}{suffix}")

    def get(self, path: str, *, action: str, params=None) -> dict[str, Any]:
        return self.request("GET", path, action=action, params=params).json()

    def pages(self, path: str, params: dict[str, Any], *, action: str, keep_alive=None) -> Iterator[dict]:
        """Resources of a list, ``pageSize`` at a time (startIndex is 1-based)."""
        start = 1
        while True:
            data = self.get(
                path, action=action, params={**params, "startIndex": start, "count": self.s.page_size}
            )
            resources = data.get("Resources") or []
            yield from resources
            start += len(resources)
            total = data.get("totalResults")
            if not resources or not isinstance(total, int) or start > total:
                return
            if keep_alive is not None:
                keep_alive()

    def patch(self, path: str, operations: list[dict], *, action: str) -> None:
        body = {"schemas": [PATCH_SCHEMA], "Operations": operations}
        self.request("PATCH", path, action=action, body=body, ok=(200, 204))


@contextlib.contextmanager
def connect(config: dict[str, Any]) -> Iterator[tuple[Client, Settings]]:
    s = settings(config)
    client = Client(s)
    try:
        yield client, s
    finally:
        client.close()


# -- objects ----------------------------------------------------------------------------------------------------


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _later(a: str | None, b: Any) -> str | None:
    """The later of two ``meta.lastModified`` strings."""
    wb = _when(b)
    if wb is None:
        return a
    wa = _when(a)
    return b if wa is None or wb > wa else a


def _email(user: dict[str, Any]) -> str | None:
    emails = [e for e in user.get("emails") or [] if isinstance(e, dict) and e.get("value")]
    primary = [e for e in emails if e.get("primary")]
    return (primary or emails or [{}])[0].get("value")


def account(user: dict[str, Any], groups: list[str]) -> dict[str, Any]:
    name = user.get("name") or {}
    meta = user.get("meta") or {}
    identity = str(user["id"])
    active = user.get("active")
    return {
        "identity": identity,
        "key": {"simple": {"id": identity}},
        "attributes": {
            "id": identity,
            "userName": user.get("userName"),
            "displayName": user.get("displayName"),
            "givenName": name.get("givenName"),
            "familyName": name.get("familyName"),
            "email": _email(user),
            "active": active if isinstance(active, bool) else None,
            "externalId": user.get("externalId"),
            "title": user.get("title"),
            "created": meta.get("created"),
            "lastModified": meta.get("lastModified"),
            GROUP_ATTRIBUTE: groups,
        },
    }


def entitlement(group: dict[str, Any]) -> dict[str, Any]:
    meta = group.get("meta") or {}
    identity = str(group["id"])
    return {
        "identity": identity,
        "key": {"simple": {"id": identity}},
        "type": ENTITLEMENT_TYPE,
        "attributes": {
            "id": identity,
            "displayName": group.get("displayName") or identity,
            "externalId": group.get("externalId"),
            "created": meta.get("created"),
            "lastModified": meta.get("lastModified"),
        },
    }


def _user_members(group: dict[str, Any]) -> Iterator[str]:
    """Ids of the Users among a Group's members (nested Groups are left out)."""
    for m in group.get("members") or []:
        if isinstance(m, dict) and m.get("value") and str(m.get("type") or "User") == "User":
            if "/Groups/" not in str(m.get("$ref") or ""):
                yield str(m["value"])


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _and(*filters: str | None) -> dict[str, str]:
    parts = [f for f in filters if f]
    if not parts:
        return {}
    if len(parts) == 1:
        return {"filter": parts[0]}
    return {"filter": " and ".join(f"({f})" for f in parts)}


def _since(input: dict[str, Any]) -> str | None:
    if not input.get("stateful"):
        return None
    since = (input.get("state") or {}).get("since")
    if since is None:
        return None
    if _when(since) is None:
        raise StateError(f"state 'since' must be a date and time (ISO 8601), got {since!r}")
    return since


def _changed(since: str) -> str:
    return f"meta.lastModified ge {_quote(since)}"


def _memberships(
    client: Client, s: Settings, keep_alive=None
) -> tuple[dict[str, list[str]], set[str], str | None]:
    """user id -> ids of the governed Groups listing it; the governed Group ids; the newest lastModified."""
    members: dict[str, list[str]] = {}
    ids: set[str] = set()
    newest = None
    params = {**_and(s.group_filter), "attributes": "id,members,meta" if s.source == "groups" else "id,meta"}
    for group in client.pages("Groups", params, action="cannot list Groups", keep_alive=keep_alive):
        gid = str(group["id"])
        ids.add(gid)
        newest = _later(newest, (group.get("meta") or {}).get("lastModified"))
        if s.source == "groups":
            for user_id in _user_members(group):
                members.setdefault(user_id, []).append(gid)
    return members, ids, newest


def _groups_of(user: dict[str, Any], s: Settings, members: dict[str, list[str]], ids: set[str]) -> list[str]:
    if s.source == "groups":
        return list(dict.fromkeys(members.get(str(user["id"]), ())))
    held = [str(g.get("value")) for g in user.get("groups") or [] if isinstance(g, dict) and g.get("value")]
    return list(dict.fromkeys(g for g in held if g in ids))


def _read_user(client: Client, s: Settings, user_id: str) -> dict[str, Any]:
    action = f"cannot read User {user_id}"
    try:
        user = client.get(f"Users/{quote(user_id, safe='')}", action=action)
    except ObjectNotFound:
        raise ObjectNotFound(f"no account {user_id!r}: no such User") from None
    if s.source == "groups":
        params = {**_and(s.group_filter, f"members.value eq {_quote(user_id)}"), "attributes": "id"}
        groups = [str(g["id"]) for g in client.pages("Groups", params, action=action)]
    else:
        ids = {
            str(g["id"])
            for g in client.pages("Groups", {**_and(s.group_filter), "attributes": "id"}, action=action)
        }
        groups = _groups_of(user, s, {}, ids)
    return account(user, groups)


# -- handlers: reading -----------------------------------------------------------------------------------------


@connector.command("std:test-connection")
def test_connection(context, input, res):
    with connect(context.config) as (client, s):
        client.get("Users", action="cannot list Users", params={"count": 1, "attributes": "id"})
        client.get("Groups", action="cannot list Groups", params={"count": 1, "attributes": "id"})
        if s.provisioning:
            try:
                config = client.get("ServiceProviderConfig", action="cannot read the ServiceProviderConfig")
            except ConnectorError:
                config = {}
            if (config.get("patch") or {}).get("supported") is False:
                raise ConnectorError(
                    f"the SCIM server at {s.host} does not support PATCH, needed to change group memberships"
                )
    res.send({})


@connector.command("std:account:list")
def account_list(context, input, res):
    since = _since(input)
    with connect(context.config) as (client, s):
        members, ids, newest = _memberships(client, s, res.keep_alive)
        action = "cannot list Users"

        def send(user: dict[str, Any]) -> None:
            nonlocal newest
            newest = _later(newest, (user.get("meta") or {}).get("lastModified"))
            res.send(account(user, _groups_of(user, s, members, ids)))

        if since is None:
            for user in client.pages("Users", _and(s.user_filter), action=action, keep_alive=res.keep_alive):
                send(user)
        else:
            # Members of changed Groups: their groups changed even when the User did not.
            touched: dict[str, None] = {}
            params = {**_and(s.group_filter, _changed(since)), "attributes": "id,members"}
            for group in client.pages(
                "Groups", params, action="cannot list Groups", keep_alive=res.keep_alive
            ):
                touched.update(dict.fromkeys(_user_members(group)))
            sent: set[str] = set()
            params = _and(s.user_filter, _changed(since))
            for user in client.pages("Users", params, action=action, keep_alive=res.keep_alive):
                sent.add(str(user["id"]))
                send(user)
            for user_id in touched:
                if user_id not in sent:
                    try:
                        user = client.get(f"Users/{quote(user_id, safe='')}", action=action)
                    except ObjectNotFound:
                        continue
                    send(user)
        if input.get("stateful"):
            res.save_state({"since": _later(newest, since)})


@connector.command("std:account:read")
def account_read(context, input, res):
    with connect(context.config) as (client, s):
        res.send(_read_user(client, s, input["identity"]))


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    since = _since(input)
    with connect(context.config) as (client, s):
        newest = None
        params = {**_and(s.group_filter, _changed(since) if since else None), "excludedAttributes": "members"}
        for group in client.pages("Groups", params, action="cannot list Groups", keep_alive=res.keep_alive):
            newest = _later(newest, (group.get("meta") or {}).get("lastModified"))
            res.send(entitlement(group))
        if input.get("stateful"):
            res.save_state({"since": _later(newest, since)})


def _read_group(client: Client, s: Settings, group_id: str) -> dict[str, Any]:
    params = {**_and(s.group_filter, f"id eq {_quote(group_id)}"), "excludedAttributes": "members"}
    for group in client.pages("Groups", params, action=f"cannot read Group {group_id}"):
        if str(group["id"]) == group_id:
            return group
    raise ObjectNotFound(
        f"no group {group_id!r}: no such Group" + (" matching the group filter" if s.group_filter else "")
    )


@connector.command("std:entitlement:read")
def entitlement_read(context, input, res):
    with connect(context.config) as (client, s):
        res.send(entitlement(_read_group(client, s, input["identity"])))


# -- provisioning -------------------------------------------------------------------------------------------------


def _provisioning(s: Settings) -> None:
    if not s.provisioning:
        raise ConnectorError(
            "provisioning is turned off for this source: set the config item 'provisioning' to true "
            "(the token needs write access to Users and Groups)"
        )


def _check_attributes(attributes: dict[str, Any]) -> None:
    unknown = sorted(set(attributes) - SETTABLE - {"id"})
    if unknown:
        raise InputError(
            f"attribute(s) {', '.join(map(repr, unknown))} cannot be set; settable: {', '.join(sorted(SETTABLE))}"
        )


def _value(attribute: str, value: Any) -> Any:
    if attribute == "active":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise InputError(f"attribute 'active' must be true or false, got {value!r}")
        return value
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputError(f"attribute {attribute!r} must be a string, got {value!r}")
    return value


def _membership(client: Client, s: Settings, user_id: str, group_id: str, *, add: bool) -> None:
    group = _read_group(client, s, str(group_id))
    path = f"Groups/{quote(str(group['id']), safe='')}"
    verb = "add" if add else "remove"
    action = f"cannot {verb} User {user_id} {'to' if add else 'from'} Group {group_id}"
    if add:
        operation = {"op": "add", "path": "members", "value": [{"value": user_id}]}
    else:
        operation = {"op": "remove", "path": f"members[value eq {_quote(user_id)}]"}
    client.patch(path, [operation], action=action)


@connector.command("std:account:create")
def account_create(context, input, res):
    attributes = dict(input.get("attributes") or {})
    _check_attributes(attributes)
    attributes.pop("id", None)
    groups = [str(g) for g in as_list(attributes.pop(GROUP_ATTRIBUTE, None))]
    user_name = attributes.pop("userName", None) or input.get("identity")
    if not isinstance(user_name, str) or not user_name:
        raise InputError("std:account:create needs a 'userName' attribute (or an identity used as userName)")
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": user_name}
    name = {
        k: _value(a, attributes.pop(a))
        for a, k in (("givenName", "givenName"), ("familyName", "familyName"))
        if a in attributes
    }
    if any(name.values()):
        body["name"] = {k: v for k, v in name.items() if v}
    email = _value("email", attributes.pop("email", None))
    if email:
        body["emails"] = [{"value": email, "type": "work", "primary": True}]
    for attribute, value in attributes.items():
        value = _value(attribute, value)
        if value is not None:
            body[attribute] = value
    body.setdefault("active", True)
    with connect(context.config) as (client, s):
        _provisioning(s)
        for group in groups:
            _read_group(client, s, group)
        response = client.request(
            "POST", "Users", action=f"cannot create User {user_name}", body=body, ok=(200, 201)
        )
        user_id = str(response.json()["id"])
        for group in dict.fromkeys(groups):
            _membership(client, s, user_id, group, add=True)
        res.send(_read_user(client, s, user_id))


def _patch_user(client: Client, user_id: str, values: dict[str, Any], action: str) -> None:
    operations = []
    for attribute, value in values.items():
        if attribute == "email":
            value = [{"value": value, "type": "work", "primary": True}] if value else []
            path = "emails"
        else:
            path = PATHS[attribute]
        if value is None or value == []:
            operations.append({"op": "remove", "path": path})
        else:
            operations.append({"op": "replace", "path": path, "value": value})
    if operations:
        client.patch(f"Users/{quote(user_id, safe='')}", operations, action=action)


@connector.command("std:account:update")
def account_update(context, input, res):
    todo = changes(input)
    user_id = input["identity"]
    _check_attributes({c.attribute: None for c in todo})
    with connect(context.config) as (client, s):
        _provisioning(s)
        held = list(_read_user(client, s, user_id)["attributes"][GROUP_ATTRIBUTE])
        target = list(held)
        values: dict[str, Any] = {}
        for change in todo:
            if change.attribute == GROUP_ATTRIBUTE:
                target = change.apply(target, [str(v) for v in change.values])
            elif change.op != "Set":
                raise InputError(f"attribute {change.attribute!r} is single-valued: use Set, not {change.op}")
            elif change.attribute == "id":
                raise InputError("attribute 'id' is assigned by the server and cannot change")
            else:
                values[change.attribute] = _value(change.attribute, change.value)
        _patch_user(client, user_id, values, f"cannot update User {user_id}")
        for group in target:
            if group not in held:
                _membership(client, s, user_id, group, add=True)
        for group in held:
            if group not in target:
                _membership(client, s, user_id, group, add=False)
        res.send(_read_user(client, s, user_id))


def _set_active(context, input, res, active: bool) -> None:
    user_id = input["identity"]
    with connect(context.config) as (client, s):
        _provisioning(s)
        _read_user(client, s, user_id)
        verb = "enable" if active else "deactivate"
        _patch_user(client, user_id, {"active": active}, f"cannot {verb} User {user_id}")
        res.send(_read_user(client, s, user_id))


@connector.command("std:account:enable")
def account_enable(context, input, res):
    _set_active(context, input, res, True)


@connector.command("std:account:disable")
def account_disable(context, input, res):
    _set_active(context, input, res, False)


@connector.command("std:account:delete")
def account_delete(context, input, res):
    user_id = input["identity"]
    with connect(context.config) as (client, s):
        _provisioning(s)
        try:
            client.request(
                "DELETE",
                f"Users/{quote(user_id, safe='')}",
                action=f"cannot delete User {user_id}",
                ok=(200, 204),
            )
        except ObjectNotFound:
            raise ObjectNotFound(f"no account {user_id!r}: no such User") from None
    res.send({})
