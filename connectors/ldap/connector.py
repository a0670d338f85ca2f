"""The LDAP connector: user entries and groups of an LDAP directory (see ``README.md``).

* Accounts are user entries (``userObjectClass`` under ``userBaseDn``), identified by their DN.
* Entitlements (type ``group``) are the groups (``groupObjectClass`` under ``groupBaseDn``): the group's DN
  is its ``member`` role; ``owner:<group DN>`` is its ``owner`` role when ``groupOwnerAttribute`` is set.
  A group that is a member of another group implies the other group's ``member`` role.
* Every listing is a simple-paged-results search (RFC 2696), ``pageSize`` entries per round trip, so
  listings stream in constant memory. Deltas select ``modifyTimestamp >= since``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_exc
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

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
OWNER_PREFIX = "owner:"
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
MODES = ("ldap", "ldaps", "starttls")
STAMP = re.compile(r"^(\d{14})(?:[.,]\d+)?Z$")

# Account attributes read from the LDAP attribute of the same name (the id comes from userIdAttribute).
PLAIN_ATTRIBUTES = ("cn", "givenName", "sn", "displayName", "mail", "title", "employeeNumber", "description")
# ... and read, never written: who the person reports to (the manager entry's DN) and their department
# (an identity source maps them to a person's manager and department).
READ_ONLY_ATTRIBUTES = ("manager", "departmentNumber")
SETTABLE = frozenset(PLAIN_ATTRIBUTES) | {"id", "password", GROUP_ATTRIBUTE}

# LDAP result codes the connector explains.
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS = 50
ALREADY_EXISTS = 68
VALUE_EXISTS = 20
NO_SUCH_ATTRIBUTE = 16


# -- settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    mode: str
    bind_dn: str
    password: str
    ca_certificate: str | None
    connect_timeout: int
    base_dn: str
    user_base: str
    group_base: str
    user_class: str
    user_filter: str
    id_attribute: str
    rdn_attribute: str
    user_classes: tuple[str, ...]
    member_of: str | None
    group_class: str
    group_filter: str
    member_attribute: str
    name_attribute: str
    owner_attribute: str | None
    page_size: int
    provisioning: bool

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    def users(self, extra: str = "") -> str:
        return f"(&(objectClass={self.user_class}){self.user_filter}{extra})"

    def groups(self, extra: str = "") -> str:
        return f"(&(objectClass={self.group_class}){self.group_filter}{extra})"


_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
# Attributes holding passwords, their hashes or private keys (OpenLDAP, Samba, Kerberos, Active Directory,
# LAPS), by name and OID: never read, named in a mapping or tested in a filter. The service account often
# may read them; whoever maintains the integration must not get them through the inventory (as an id or a
# group name) or one character at a time through a filter.
SECRET_ATTRIBUTES = frozenset(
    a.lower()
    for a in (
        "userPassword", "2.5.4.35", "authPassword", "1.3.6.1.4.1.4203.1.3.4", "sambaNTPassword",
        "sambaLMPassword", "sambaPasswordHistory", "userPKCS12", "krbPrincipalKey", "krbExtraData",
        "unicodePwd", "dBCSPwd", "ntPwdHistory", "lmPwdHistory", "supplementalCredentials", "pwdHistory",
        "msDS-ManagedPassword", "ms-Mcs-AdmPwd", "msLAPS-Password", "msLAPS-EncryptedPassword",
        "msLAPS-EncryptedDSRMPassword", "msDS-KeyCredentialLink",
    )
)  # fmt: skip
_FILTER_ATTRIBUTE = re.compile(r"\(\s*([A-Za-z0-9][A-Za-z0-9.-]*)")


def _refuse_secret(key: str, names) -> None:
    secret = sorted({n for n in names if n.lower() in SECRET_ATTRIBUTES})
    if secret:
        raise ConfigError(
            f"config item {key!r}: {', '.join(secret)} holds passwords or keys; the connector never reads it",
            item=key,
        )


def _attribute_name(config: dict[str, Any], key: str, default: str | None) -> str | None:
    value = _text(config, key, default)
    if value is not None and not _ATTRIBUTE_NAME.match(value):
        raise ConfigError(f"config item {key!r} must be an LDAP attribute name, got {value!r}", item=key)
    if value is not None:
        _refuse_secret(key, [value])
    return value


def _filter(config: dict[str, Any], key: str) -> str:
    """An extra LDAP filter ANDed to the object class, checked for balanced parentheses."""
    value = _text(config, key)
    if not value:
        return ""
    if not value.startswith("("):
        value = f"({value})"
    _refuse_secret(key, _FILTER_ATTRIBUTE.findall(value))
    depth = 0
    escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
    if depth != 0:
        raise ConfigError(f"config item {key!r} is not a valid LDAP filter: unbalanced parentheses", item=key)
    return value


def settings(config: dict[str, Any]) -> Settings:
    mode = config.get("connectionOption") or "ldap"
    if mode not in MODES:
        raise ConfigError(f"unknown connection option {mode!r} (options: {', '.join(MODES)})")
    base_dn = _text(config, "baseDn") or ""
    provisioning = config.get("provisioning", False)
    id_attribute = _attribute_name(config, "userIdAttribute", "uid")
    classes = [str(c).strip() for c in as_list(config.get("userObjectClasses")) if str(c).strip()]
    return Settings(
        host=_text(config, "host") or "",
        port=_int(config, "port", 636 if mode == "ldaps" else 389, 1, 65535),
        mode=mode,
        bind_dn=_text(config, "bindDn") or "",
        password=config.get("password") or "",
        ca_certificate=_text(config, "caCertificate"),
        connect_timeout=_int(config, "connectTimeout", 10, 1, 3600),
        base_dn=base_dn,
        user_base=_text(config, "userBaseDn") or base_dn,
        group_base=_text(config, "groupBaseDn") or base_dn,
        user_class=_attribute_name(config, "userObjectClass", "inetOrgPerson"),
        user_filter=_filter(config, "userFilter"),
        id_attribute=id_attribute,
        rdn_attribute=_attribute_name(config, "userRdnAttribute", id_attribute),
        user_classes=tuple(classes or ("top", "person", "organizationalPerson", "inetOrgPerson")),
        member_of=_attribute_name(config, "userMemberOfAttribute", None),
        group_class=_attribute_name(config, "groupObjectClass", "groupOfNames"),
        group_filter=_filter(config, "groupFilter"),
        member_attribute=_attribute_name(config, "groupMemberAttribute", "member"),
        name_attribute=_attribute_name(config, "groupNameAttribute", "cn"),
        owner_attribute=_attribute_name(config, "groupOwnerAttribute", None),
        page_size=_int(config, "pageSize", 500, 1, 10_000),
        provisioning=provisioning is True or str(provisioning).lower() == "true",
    )


# -- connections -----------------------------------------------------------------------------------------


def _socket_reason(exc: Exception, s: Settings) -> str:
    """Why opening the connection failed, in a few words."""
    text = one_line(exc, s.password).lower()
    try:
        socket.getaddrinfo(s.host, s.port)
    except (OSError, UnicodeError):
        return f"unknown host {s.host}"
    if "refused" in text:
        return "connection refused"
    if "timed out" in text or "timeout" in text:
        return f"no answer within {s.connect_timeout} s"
    if "certificate verify failed" in text or "certificate" in text and "fail" in text:
        if "hostname" in text or "doesn't match" in text or "mismatch" in text:
            return f"the server certificate does not match the host name {s.host}"
        return "the server certificate is not signed by a trusted CA (see the config item 'caCertificate')"
    if "hostname" in text or "doesn't match" in text:
        return f"the server certificate does not match the host name {s.host}"
    if (
        "wrong version number" in text
        or "record layer failure" in text
        or "unexpected eof" in text
        or "unexpected_eof" in text
    ):
        return "the server does not speak TLS on this port (LDAPS); try the StartTLS or plain option"
    if "ssl" in text or "tls" in text:
        return f"TLS failed: {one_line(exc, s.password)[:200]}"
    return one_line(exc, s.password)[:200]


def _tls(s: Settings) -> ldap3.Tls:
    return ldap3.Tls(
        validate=ssl.CERT_REQUIRED,
        ca_certs_data=s.ca_certificate if s.ca_certificate else None,
        sni=s.host,
        version=None,
    )


@contextlib.contextmanager
def connect(config: dict[str, Any]) -> Iterator[tuple[ldap3.Connection, Settings]]:
    """A bound connection and the settings, or a one-line :class:`ConnectorError` saying why not."""
    s = settings(config)
    if s.ca_certificate and "-----BEGIN" not in s.ca_certificate:
        raise ConfigError("config item 'caCertificate' must be a PEM certificate", item="caCertificate")
    tls = _tls(s) if s.mode in ("ldaps", "starttls") else None
    server = ldap3.Server(
        s.host,
        port=s.port,
        use_ssl=s.mode == "ldaps",
        tls=tls,
        get_info=ldap3.NONE,
        connect_timeout=s.connect_timeout,
    )
    if not s.bind_dn or not s.password:
        raise ConfigError("config items 'bindDn' and 'password' are needed for a simple bind", item="bindDn")
    conn = ldap3.Connection(
        server,
        user=s.bind_dn,
        password=s.password,
        authentication=ldap3.SIMPLE,
        raise_exceptions=False,
        receive_timeout=max(s.connect_timeout, 30),
        read_only=False,
        check_names=False,
        auto_referrals=False,
    )
    where = f"cannot connect to {s.where}"
    try:
        try:
            conn.open()
        except ldap_exc.LDAPException as exc:
            raise ConnectorError(f"{where}: {_socket_reason(exc, s)}") from None
        if s.mode == "starttls":
            try:
                started = conn.start_tls()
            except ldap_exc.LDAPException as exc:
                raise ConnectorError(f"{where}: StartTLS failed: {_socket_reason(exc, s)}") from None
            if not started:
                detail = one_line(conn.result.get("message") or conn.result.get("description"), s.password)
                raise ConnectorError(f"{where}: the server refused StartTLS ({detail})")
        try:
            bound = conn.bind()
        except ldap_exc.LDAPException as exc:
            raise ConnectorError(f"{where}: {_socket_reason(exc, s)}") from None
        if not bound:
            code = conn.result.get("result")
            if code == INVALID_CREDENTIALS:
                raise ConnectorError(
                    f"authentication failed for {s.bind_dn} at {s.where}: wrong password or no such entry"
                )
            detail = one_line(conn.result.get("message") or conn.result.get("description"), s.password)
            if "confidentiality" in detail.lower() or code == 13:
                raise ConnectorError(
                    f"the server at {s.where} refuses a simple bind without TLS: use LDAPS or StartTLS"
                )
            raise ConnectorError(f"bind as {s.bind_dn} at {s.where} failed: {detail}")
        yield conn, s
    finally:
        with contextlib.suppress(Exception):
            conn.unbind()


def _ldap_error(conn: ldap3.Connection, s: Settings, action: str) -> ConnectorError:
    result = conn.result or {}
    code = result.get("result")
    detail = one_line(result.get("message") or "", s.password)
    name = result.get("description") or f"result {code}"
    if code == INSUFFICIENT_ACCESS:
        return ConnectorError(
            f"{action}: the service account {s.bind_dn} lacks the access rights (insufficientAccessRights)"
            + (f": {detail}" if detail else "")
        )
    text = f"{action}: {name}" + (f" ({detail})" if detail else "")
    if code in (NO_SUCH_OBJECT,):
        return ObjectNotFound(text)
    if code in (
        17,
        18,
        19,
        21,
        64,
        65,
        67,
        69,
    ):  # undefinedType, inappropriateMatching, constraint, syntax...
        return InputError(text)
    return ConnectorError(text)


def _search(
    conn: ldap3.Connection,
    s: Settings,
    base: str,
    filter_: str,
    attributes: list[str],
    *,
    scope: str = ldap3.SUBTREE,
    keep_alive=None,
) -> Iterator[dict[str, Any]]:
    """Entries ``{"dn", "attributes"}`` of a paged search, one page in memory at a time."""
    cookie: bytes | None = None
    while True:
        try:
            conn.search(
                base,
                filter_,
                search_scope=scope,
                attributes=attributes or ["1.1"],
                paged_size=s.page_size if scope != ldap3.BASE else None,
                paged_cookie=cookie,
            )
        except ldap_exc.LDAPInvalidFilterError as exc:
            raise ConfigError(f"invalid LDAP filter {filter_}: {one_line(exc)}") from None
        except ldap_exc.LDAPCommunicationError as exc:
            raise ConnectorError(f"connection to {s.where} lost: {_socket_reason(exc, s)}") from None
        result = conn.result
        if result["result"] == NO_SUCH_OBJECT and scope == ldap3.BASE:
            return
        if result["result"] not in (0, 4):  # success, sizeLimitExceeded (paging handles it)
            if result["result"] == NO_SUCH_OBJECT:
                raise ConnectorError(
                    f"the base DN {base} does not exist or the service account {s.bind_dn} cannot read it"
                )
            raise _ldap_error(conn, s, f"search under {base} for {filter_} failed")
        for entry in conn.response or ():
            if entry.get("type") == "searchResEntry":
                yield {"dn": entry["dn"], "attributes": entry["attributes"], "raw": entry["raw_attributes"]}
        try:
            cookie = result["controls"][PAGED_RESULTS_OID]["value"]["cookie"]
        except (KeyError, TypeError):
            cookie = None
        if not cookie:
            return
        if keep_alive is not None:
            keep_alive()


def _read_entry(conn: ldap3.Connection, s: Settings, dn: str, filter_: str, attributes: list[str]):
    """The entry at ``dn`` when it matches ``filter_``, else ``None``."""
    for entry in _search(conn, s, dn, filter_, attributes, scope=ldap3.BASE):
        return entry
    return None


# -- values ------------------------------------------------------------------------------------------------

_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


def norm_dn(dn: str) -> str:
    """A DN in a form fit for comparing: RDNs split, spaces around separators dropped, lower case."""
    dn = re.sub(r"#'[01]*'B$", "", dn.strip())  # uniqueMember's optional unique identifier
    parts = []
    for rdn in _UNESCAPED_COMMA.split(dn):
        kind, _, value = rdn.partition("=")
        parts.append(f"{kind.strip().lower()}={value.strip().lower()}")
    return ",".join(parts)


def _values(attributes: Any, name: str | None) -> list[Any]:
    if not name:
        return []
    value = attributes.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _first(attributes: Any, name: str | None) -> str | None:
    for v in _values(attributes, name):
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        return str(v)
    return None


def stamp_of(attributes: Any) -> str | None:
    """``modifyTimestamp`` as ``YYYYmmddHHMMSSZ`` (fractions, as Active Directory writes them, dropped)."""
    value = _first(attributes, "modifyTimestamp")
    if value:
        m = STAMP.match(value)
        if m:
            return m.group(1) + "Z"
    return None


def _iso(stamp: str | None) -> str | None:
    if not stamp:
        return None
    m = STAMP.match(stamp)
    if not m:
        return stamp
    d = m.group(1)
    return f"{d[0:4]}-{d[4:6]}-{d[6:8]}T{d[8:10]}:{d[10:12]}:{d[12:14]}Z"


def _uuid(entry: dict[str, Any]) -> str | None:
    value = _first(entry["attributes"], "entryUUID")
    if value:
        return value
    raw = entry["raw"].get("objectGUID") if entry.get("raw") else None
    if raw and len(raw[0]) == 16:
        return str(uuid.UUID(bytes_le=raw[0]))
    return None


def _user_attributes(s: Settings) -> list[str]:
    names = [
        s.id_attribute,
        *PLAIN_ATTRIBUTES,
        *READ_ONLY_ATTRIBUTES,
        "entryUUID",
        "objectGUID",
        "userAccountControl",
    ]
    names += ["createTimestamp", "modifyTimestamp"]
    if s.member_of:
        names.append(s.member_of)
    return list(dict.fromkeys(names))


def _group_attributes(s: Settings, *, members: bool = False) -> list[str]:
    names = [s.name_attribute, "description", "modifyTimestamp"]
    if s.owner_attribute:
        names.append(s.owner_attribute)
    if s.member_of:
        names.append(s.member_of)
    if members:
        names.append(s.member_attribute)
    return list(dict.fromkeys(names))


def account(entry: dict[str, Any], s: Settings, groups: list[str]) -> dict[str, Any]:
    attrs = entry["attributes"]
    dn = entry["dn"]
    out: dict[str, Any] = {"dn": dn, "id": _first(attrs, s.id_attribute)}
    for name in (*PLAIN_ATTRIBUTES, *READ_ONLY_ATTRIBUTES):
        out[name] = _first(attrs, name)
    uac = _first(attrs, "userAccountControl")
    if uac and uac.isdigit():
        out["enabled"] = not int(uac) & 2  # ACCOUNTDISABLE
    out["uuid"] = _uuid(entry)
    out["created"] = _iso(_first(attrs, "createTimestamp"))
    out["modified"] = _iso(_first(attrs, "modifyTimestamp"))
    out[GROUP_ATTRIBUTE] = groups
    return {"identity": dn, "key": {"simple": {"id": dn}}, "attributes": out}


def group_entitlements(entry: dict[str, Any], s: Settings, parents: list[str]) -> Iterator[dict[str, Any]]:
    """The ``member`` entitlement of a group and, with an owner attribute, its ``owner`` entitlement."""
    attrs = entry["attributes"]
    dn = entry["dn"]
    name = _first(attrs, s.name_attribute) or dn
    owners = [str(v) for v in _values(attrs, s.owner_attribute)]
    common = {
        "dn": dn,
        "name": name,
        "description": _first(attrs, "description"),
        "owner": owners,
        "modified": _iso(_first(attrs, "modifyTimestamp")),
    }
    yield {
        "identity": dn,
        "key": {"simple": {"id": dn}},
        "type": ENTITLEMENT_TYPE,
        "attributes": {
            "id": dn,
            **common,
            "displayName": f"Member of {name}",
            "role": "member",
            "roleName": "Member",
            "implies": parents,
        },
    }
    if s.owner_attribute:
        identity = OWNER_PREFIX + dn
        yield {
            "identity": identity,
            "key": {"simple": {"id": identity}},
            "type": ENTITLEMENT_TYPE,
            "attributes": {
                "id": identity,
                **common,
                "displayName": f"Owner of {name}",
                "role": "owner",
                "roleName": "Owner",
                "implies": [],
            },
        }


# -- the group index -------------------------------------------------------------------------------------


@dataclass
class GroupIndex:
    """What one pass over the groups tells: their DNs, owners and (without memberOf) memberships."""

    canon: dict[str, str]  # normalised DN -> DN as the server writes it
    owned: dict[str, list[str]]  # normalised owner DN -> DNs of the groups it owns
    members: dict[str, list[str]] | None  # normalised member DN -> group DNs (None: read memberOf)
    newest: str | None  # newest modifyTimestamp seen

    def groups_of(self, dn: str, member_of: Iterable[Any]) -> list[str]:
        """Entitlement identities held by the entry ``dn``: its governed groups, then groups it owns."""
        key = norm_dn(dn)
        if self.members is not None:
            held = list(self.members.get(key, ()))
        else:
            held = [self.canon[n] for n in (norm_dn(str(v)) for v in member_of) if n in self.canon]
        held += [OWNER_PREFIX + g for g in self.owned.get(key, ())]
        return list(dict.fromkeys(held))


def group_index(conn: ldap3.Connection, s: Settings, *, keep_alive=None) -> GroupIndex:
    """One paged pass over the groups. Memberships are kept only when no memberOf attribute is configured.

    Without ``userMemberOfAttribute`` the index holds every membership (memory grows with the number of
    memberships); with it, the index holds one DN per group and the owners.
    """
    attributes = ["modifyTimestamp"]
    if s.owner_attribute:
        attributes.append(s.owner_attribute)
    if not s.member_of:
        attributes.append(s.member_attribute)
    canon: dict[str, str] = {}
    owned: dict[str, list[str]] = {}
    raw_members: list[tuple[str, list[str]]] = []
    newest = None
    for entry in _search(conn, s, s.group_base, s.groups(), attributes, keep_alive=keep_alive):
        dn = entry["dn"]
        canon[norm_dn(dn)] = dn
        for owner in _values(entry["attributes"], s.owner_attribute):
            owned.setdefault(norm_dn(str(owner)), []).append(dn)
        if not s.member_of:
            raw_members.append(
                (dn, [norm_dn(str(v)) for v in _values(entry["attributes"], s.member_attribute)])
            )
        newest = max(filter(None, (newest, stamp_of(entry["attributes"]))), default=None)
    members = None
    if not s.member_of:
        members = {}
        for dn, values in raw_members:
            for value in values:
                members.setdefault(value, []).append(dn)
    return GroupIndex(canon=canon, owned=owned, members=members, newest=newest)


def _parents(index: GroupIndex, entry: dict[str, Any], s: Settings) -> list[str]:
    """Member entitlements a group's members also get: the governed groups the group is a member of."""
    held = index.groups_of(entry["dn"], _values(entry["attributes"], s.member_of))
    return [g for g in held if not g.startswith(OWNER_PREFIX)]


def _held_by(conn: ldap3.Connection, s: Settings, dn: str) -> tuple[list[str], list[str]]:
    """DNs of the governed groups listing ``dn`` as a member, and of those listing it as an owner."""
    value = escape_filter_chars(dn)
    member = [
        e["dn"] for e in _search(conn, s, s.group_base, s.groups(f"({s.member_attribute}={value})"), [])
    ]
    owner = []
    if s.owner_attribute:
        owner = [
            e["dn"] for e in _search(conn, s, s.group_base, s.groups(f"({s.owner_attribute}={value})"), [])
        ]
    return member, owner


def _under(dn: str, base: str) -> bool:
    dn, base = norm_dn(dn), norm_dn(base)
    return not base or dn == base or dn.endswith("," + base)


def _newest(*stamps: str | None) -> str | None:
    return max((x for x in stamps if x), default=None)


def _since(context, input: dict[str, Any]) -> str | None:
    """The ``since`` of a stateful run's state, or ``None`` for a full run."""
    if not input.get("stateful"):
        return None
    state = input.get("state") or {}
    since = state.get("since")
    if since is None:
        return None
    if not isinstance(since, str) or not STAMP.match(since):
        raise StateError(
            f"state 'since' must be an LDAP generalized time like 20240131235959Z, got {since!r}"
        )
    return since


def _read_account(conn: ldap3.Connection, s: Settings, dn: str) -> dict[str, Any]:
    entry = None
    if "=" in dn and _under(dn, s.user_base):
        entry = _read_entry(conn, s, dn, s.users(), _user_attributes(s))
    if entry is None:
        raise ObjectNotFound(
            f"no account {dn!r}: no {s.user_class} entry matching the user filter at that DN under {s.user_base}"
        )
    member, owner = _held_by(conn, s, entry["dn"])
    return account(entry, s, list(dict.fromkeys(member + [OWNER_PREFIX + g for g in owner])))


def _split_entitlement(identity: str, s: Settings) -> tuple[str, str]:
    """``(role, group DN)`` of an entitlement identity. Raises :class:`InputError`."""
    if identity.startswith(OWNER_PREFIX):
        if not s.owner_attribute:
            raise InputError(f"{identity!r}: owner entitlements need the config item 'groupOwnerAttribute'")
        return "owner", identity[len(OWNER_PREFIX) :]
    if "=" not in identity:
        raise InputError(f"{identity!r} is not a group DN nor owner:<group DN>")
    return "member", identity


def _read_group(conn: ldap3.Connection, s: Settings, dn: str, attributes: list[str]) -> dict[str, Any]:
    entry = _read_entry(conn, s, dn, s.groups(), attributes) if _under(dn, s.group_base) else None
    if entry is None:
        raise ObjectNotFound(
            f"no group {dn!r}: no {s.group_class} entry matching the group filter at that DN under {s.group_base}"
        )
    return entry


# -- handlers: reading -------------------------------------------------------------------------------------


@connector.command("std:test-connection")
def test_connection(context, input, res):
    with connect(context.config) as (conn, s):
        root = _read_entry(conn, s, "", "(objectClass=*)", ["supportedControl"])
        if root is not None:
            controls = {str(v) for v in _values(root["attributes"], "supportedControl")}
            if controls and PAGED_RESULTS_OID not in controls:
                raise ConnectorError(
                    f"the server at {s.where} does not support the simple paged results control "
                    f"({PAGED_RESULTS_OID}), needed to list large directories"
                )
        for item, base in (("baseDn", s.base_dn), ("userBaseDn", s.user_base), ("groupBaseDn", s.group_base)):
            if not base:
                raise ConfigError(f"config item {item!r} is required", item=item)
            if _read_entry(conn, s, base, "(objectClass=*)", []) is None:
                raise ConnectorError(
                    f"{item} {base} does not exist or the service account {s.bind_dn} cannot read it "
                    "(it needs read access to the users and groups)"
                )
        for what, base, filter_, attribute in (
            ("users", s.user_base, s.users(), s.id_attribute),
            ("groups", s.group_base, s.groups(), s.member_attribute),
        ):
            conn.search(base, filter_, attributes=[attribute], size_limit=1)
            if conn.result["result"] not in (0, 4):
                raise _ldap_error(conn, s, f"cannot search the {what} ({filter_}) under {base}")
    res.send({})


@connector.command("std:account:list")
def account_list(context, input, res):
    since = _since(context, input)
    with connect(context.config) as (conn, s):
        index = group_index(conn, s, keep_alive=res.keep_alive)
        newest = index.newest
        attributes = _user_attributes(s)

        def send(entry: dict[str, Any]) -> None:
            nonlocal newest
            newest = _newest(newest, stamp_of(entry["attributes"]))
            res.send(
                account(entry, s, index.groups_of(entry["dn"], _values(entry["attributes"], s.member_of)))
            )

        if since is None:
            for entry in _search(conn, s, s.user_base, s.users(), attributes, keep_alive=res.keep_alive):
                send(entry)
        else:
            # Members and owners of changed groups: their groups changed even when their entry did not.
            touched: dict[str, str] = {}
            changed = s.groups(f"(modifyTimestamp>={since})")
            wanted = [s.member_attribute] + ([s.owner_attribute] if s.owner_attribute else [])
            for group in _search(conn, s, s.group_base, changed, wanted, keep_alive=res.keep_alive):
                for name in wanted:
                    for value in _values(group["attributes"], name):
                        touched.setdefault(norm_dn(str(value)), str(value))
            sent: set[str] = set()
            changed = s.users(f"(modifyTimestamp>={since})")
            for entry in _search(conn, s, s.user_base, changed, attributes, keep_alive=res.keep_alive):
                sent.add(norm_dn(entry["dn"]))
                send(entry)
            for key, dn in touched.items():
                if key not in sent and _under(dn, s.user_base):
                    entry = _read_entry(conn, s, dn, s.users(), attributes)
                    if entry is not None:
                        send(entry)
        if input.get("stateful"):
            res.save_state({"since": _newest(newest, since)})


@connector.command("std:account:read")
def account_read(context, input, res):
    with connect(context.config) as (conn, s):
        res.send(_read_account(conn, s, input["identity"]))


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    since = _since(context, input)
    with connect(context.config) as (conn, s):
        index = group_index(conn, s, keep_alive=res.keep_alive)

        def send(entry: dict[str, Any]) -> None:
            for obj in group_entitlements(entry, s, _parents(index, entry, s)):
                res.send(obj)

        if since is None:
            for entry in _search(
                conn, s, s.group_base, s.groups(), _group_attributes(s), keep_alive=res.keep_alive
            ):
                send(entry)
        else:
            # Changed groups, and the groups nested in them (what they imply may have changed).
            sent: set[str] = set()
            children: dict[str, str] = {}
            changed = s.groups(f"(modifyTimestamp>={since})")
            attributes = _group_attributes(s, members=True)
            for entry in _search(conn, s, s.group_base, changed, attributes, keep_alive=res.keep_alive):
                sent.add(norm_dn(entry["dn"]))
                for value in _values(entry["attributes"], s.member_attribute):
                    key = norm_dn(str(value))
                    if key in index.canon:
                        children[key] = index.canon[key]
                send(entry)
            for key, dn in children.items():
                if key not in sent:
                    entry = _read_entry(conn, s, dn, s.groups(), _group_attributes(s))
                    if entry is not None:
                        send(entry)
        if input.get("stateful"):
            res.save_state({"since": _newest(index.newest, since)})


@connector.command("std:entitlement:read")
def entitlement_read(context, input, res):
    identity = input["identity"]
    with connect(context.config) as (conn, s):
        role, dn = _split_entitlement(identity, s)
        entry = _read_group(conn, s, dn, _group_attributes(s))
        parents, _ = _held_by(conn, s, entry["dn"])
        for obj in group_entitlements(entry, s, parents):
            if obj["attributes"]["role"] == role:
                res.send(obj)


# -- provisioning ------------------------------------------------------------------------------------------


def _provisioning(s: Settings) -> None:
    if not s.provisioning:
        raise ConnectorError(
            "provisioning is turned off for this source: set the config item 'provisioning' to true "
            "(the service account needs write access to the user entries and the groups' member attribute)"
        )


def _check_attributes(attributes: dict[str, Any]) -> None:
    unknown = sorted(set(attributes) - SETTABLE)
    if unknown:
        raise InputError(
            f"attribute(s) {', '.join(map(repr, unknown))} cannot be set; settable: {', '.join(sorted(SETTABLE))}"
        )


def _ldap_name(s: Settings, attribute: str) -> str:
    if attribute == "id":
        return s.id_attribute
    if attribute == "password":
        return "userPassword"
    return attribute


def _scalar(attribute: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InputError(f"attribute {attribute!r} must be a string, got {value!r}")
    return str(value)


def _change_membership(
    conn: ldap3.Connection, s: Settings, user_dn: str, identity: str, *, add: bool, deleting: bool = False
) -> None:
    role, group_dn = _split_entitlement(str(identity), s)
    group = _read_group(conn, s, group_dn, [])
    attribute = s.owner_attribute if role == "owner" else s.member_attribute
    operation = ldap3.MODIFY_ADD if add else ldap3.MODIFY_DELETE
    if conn.modify(group["dn"], {attribute: [(operation, [user_dn])]}):
        return
    code = conn.result.get("result")
    if (add and code == VALUE_EXISTS) or (not add and code == NO_SUCH_ATTRIBUTE):
        return  # already so
    verb = "add" if add else "remove"
    if not add and code == 65:  # objectClassViolation: the attribute is mandatory
        if deleting:
            return  # the server's delete (and its referential integrity, if any) decides
        raise ConnectorError(
            f"cannot remove {user_dn} from {group['dn']}: it is the last {attribute} and {s.group_class} "
            f"requires at least one"
        )
    raise _ldap_error(conn, s, f"cannot {verb} {user_dn} as {role} of {group['dn']}")


@connector.command("std:account:create")
def account_create(context, input, res):
    attributes = dict(input.get("attributes") or {})
    _check_attributes(attributes)
    identity = input.get("identity")
    groups = [str(v) for v in as_list(attributes.pop(GROUP_ATTRIBUTE, None))]
    with connect(context.config) as (conn, s):
        _provisioning(s)
        if isinstance(identity, str) and "=" in identity:
            dn = identity
        else:
            if identity and not attributes.get("id"):
                attributes["id"] = identity
            if not attributes.get("id"):
                raise InputError("std:account:create needs an identity or an 'id' attribute")
            rdn = next((a for a in attributes if _ldap_name(s, a).lower() == s.rdn_attribute.lower()), None)
            if rdn is None and s.rdn_attribute.lower() == "cn":
                rdn = "cn"
                attributes.setdefault("cn", attributes.get("displayName") or attributes["id"])
            if rdn is None or not attributes.get(rdn):
                raise InputError(
                    f"std:account:create needs a value for the naming attribute {s.rdn_attribute}"
                )
            dn = f"{s.rdn_attribute}={escape_rdn(str(attributes[rdn]))},{s.user_base}"
        if not _under(dn, s.user_base) or norm_dn(dn) == norm_dn(s.user_base):
            raise InputError(f"the new entry {dn} is not under userBaseDn {s.user_base}")
        for group in groups:
            _split_entitlement(group, s)
        if not attributes.get("cn"):
            given = " ".join(str(attributes[a]) for a in ("givenName", "sn") if attributes.get(a))
            attributes["cn"] = (
                attributes.get("displayName") or given or attributes.get("id") or dn.split(",")[0]
            )
        attributes.setdefault("sn", attributes.get("id") or attributes["cn"])
        values = {}
        for name, value in attributes.items():
            value = _scalar(name, value)
            if value is not None:
                values[_ldap_name(s, name)] = value
        if not conn.add(dn, list(s.user_classes), values):
            if conn.result.get("result") == ALREADY_EXISTS:
                raise ConnectorError(f"cannot create {dn}: an entry with that DN already exists")
            raise _ldap_error(conn, s, f"cannot create {dn}")
        for group in dict.fromkeys(groups):
            _change_membership(conn, s, dn, group, add=True)
        res.send(_read_account(conn, s, dn))


@connector.command("std:account:update")
def account_update(context, input, res):
    todo = changes(input)
    dn = input["identity"]
    _check_attributes({c.attribute: None for c in todo})
    with connect(context.config) as (conn, s):
        _provisioning(s)
        current = _read_account(conn, s, dn)
        held = list(current["attributes"][GROUP_ATTRIBUTE])
        target = list(held)
        modifications: dict[str, list] = {}
        for change in todo:
            if change.attribute == GROUP_ATTRIBUTE:
                values = [str(v) for v in change.values]
                for v in values:
                    _split_entitlement(v, s)
                target = change.apply(target, values)
                continue
            if change.op != "Set":
                raise InputError(f"attribute {change.attribute!r} is single-valued: use Set, not {change.op}")
            name = _ldap_name(s, change.attribute)
            if name.lower() == s.rdn_attribute.lower():
                raise InputError(
                    f"attribute {change.attribute!r} names the entry ({s.rdn_attribute}); renaming is not supported"
                )
            value = _scalar(change.attribute, change.value)
            modifications[name] = [(ldap3.MODIFY_REPLACE, [value] if value is not None else [])]
        if modifications and not conn.modify(current["identity"], modifications):
            raise _ldap_error(conn, s, f"cannot update {dn}")
        for identity in target:
            if identity not in held:
                _change_membership(conn, s, current["identity"], identity, add=True)
        for identity in held:
            if identity not in target:
                _change_membership(conn, s, current["identity"], identity, add=False)
        res.send(_read_account(conn, s, current["identity"]))


@connector.command("std:account:delete")
def account_delete(context, input, res):
    dn = input["identity"]
    with connect(context.config) as (conn, s):
        _provisioning(s)
        if norm_dn(dn) == norm_dn(s.bind_dn):
            raise ConnectorError(f"refusing to delete {dn}: it is the service account this source binds as")
        current = _read_account(conn, s, dn)
        # Remove the memberships first: without a referential integrity overlay they would dangle.
        for identity in current["attributes"][GROUP_ATTRIBUTE]:
            _change_membership(conn, s, current["identity"], identity, add=False, deleting=True)
        if not conn.delete(current["identity"]):
            raise _ldap_error(conn, s, f"cannot delete {dn}")
    res.send({})
