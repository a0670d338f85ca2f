"""The Redis connector: ACL users, and the command categories, key patterns and channels they are allowed.

* Accounts are ACL users, keyed by user name.
* Entitlements (type ``permission``): ``category:<name>`` (role ``allowed``: every command of the category may
  run; ``category:all`` is ``+@all``), ``keys:<pattern>`` / ``keys-read:<pattern>`` / ``keys-write:<pattern>``
  (roles ``access``, ``read``, ``write`` of the key pattern ``~``, ``%R~``, ``%W~``) and ``channels:<pattern>``
  (role ``access`` of a Pub/Sub channel pattern ``&``).
* Whether a category is held is computed from the user's command rules and the server's own category lists
  (``ACL CAT``), so it does not depend on how the server rewrites rules.
* Users are read with ``ACL USERS`` and then ``ACL GETUSER``, pipelined a page at a time; passwords are sent
  as SHA-256 hashes (``#<hash>``), so the clear text never reaches the server.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis import exceptions as rex
from redis.backoff import NoBackoff
from redis.retry import Retry

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
from connectors.sdk.config import pem_file

connector = Connector(Path(__file__).parent)

ENTITLEMENT_TYPE = "permission"
GROUP_ATTRIBUTE = "memberOf"
ALL = "all"
PERSISTENCE = ("none", "aclfile", "config")
# Entitlement prefix -> (ACL rule prefix, resource prefix, resource kind, role, role name)
KEY_KINDS = {
    "keys": ("~", "keys", "key pattern", "access", "Read and write"),
    "keys-read": ("%R~", "keys", "key pattern", "read", "Read"),
    "keys-write": ("%W~", "keys", "key pattern", "write", "Write"),
    "channels": ("&", "channels", "channel pattern", "access", "Publish and subscribe"),
}
NAME = re.compile(r"^[^\s>#<~%&()\"']+$")  # a user name that is one ACL SETUSER argument and nothing else


# -- settings and connections ------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    username: str
    password: str | None
    tls: bool
    ca: str | None
    connect_timeout: int
    page_size: int
    provisioning: bool
    persistence: str
    user_pattern: re.Pattern | None
    key_patterns: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def settings(config: dict[str, Any]) -> Settings:
    pattern = _text(config, "userNamePattern")
    try:
        compiled = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise ConfigError(
            f"config item 'userNamePattern': invalid regular expression: {exc}", item="userNamePattern"
        ) from None
    persistence = _text(config, "persistence") or "none"
    if persistence not in PERSISTENCE:
        raise ConfigError(
            f"config item 'persistence' must be one of {', '.join(PERSISTENCE)}", item="persistence"
        )
    tls = config.get("tls") is True or config.get("connectionOption") == "tls"
    return Settings(
        host=_text(config, "host") or "",
        port=_int(config, "port", 6379, 1, 65535),
        username=_text(config, "username") or "default",
        password=config.get("password") or None,
        tls=tls,
        ca=_text(config, "sslCa"),
        connect_timeout=_int(config, "connectTimeout", 10, 1, 3600),
        page_size=_int(config, "pageSize", 500, 1, 100_000),
        provisioning=config.get("provisioning") is True,
        persistence=persistence,
        user_pattern=compiled,
        key_patterns=tuple(str(p) for p in as_list(config.get("keyPatterns")) if str(p)),
    )


def _connect_message(s: Settings, exc: Exception) -> str:
    raw = one_line(exc, s.password)
    low = raw.lower()
    where = s.where
    if isinstance(exc, rex.AuthenticationError) and "required" in low:
        return f"authentication failed at {where}: the server requires a password, none is set"
    if isinstance(exc, rex.AuthenticationError) or "wrongpass" in low or "invalid username-password" in low:
        return (
            f"authentication failed for user {s.username} at {where}: wrong password, no such user, "
            "or the user is disabled"
        )
    if isinstance(exc, rex.NoPermissionError):
        return f"the service account {s.username} may not run PING at {where}: {raw}"
    if "connection refused" in low:
        return f"cannot connect to {where}: connection refused"
    if "name or service not known" in low or "error -2 " in low or "error -3 " in low or "nodename" in low:
        return f"cannot connect to {where}: unknown host {s.host}"
    if "certificate verify failed" in low:
        return f"cannot connect to {where}: the server certificate is not signed by the configured CA"
    if "wrong version number" in low or "ssl" in low and ("record" in low or "eof" in low):
        return f"cannot connect to {where}: TLS handshake failed (does the server speak TLS on this port?)"
    if isinstance(exc, rex.TimeoutError) or "timed out" in low or "timeout" in low:
        return f"cannot connect to {where}: no answer within {s.connect_timeout} s"
    if "connection reset" in low or "closed by server" in low:
        return f"cannot connect to {where}: the server closed the connection (TLS expected?)"
    return f"cannot connect to {where}: {raw}"


@contextlib.contextmanager
def connect(config: dict[str, Any]) -> Iterator[tuple[redis.Redis, Settings]]:
    s = settings(config)
    params: dict[str, Any] = {
        "host": s.host,
        "port": s.port,
        "username": s.username,
        "password": s.password,
        "socket_connect_timeout": s.connect_timeout,
        "socket_timeout": s.connect_timeout,
        "decode_responses": True,
        "retry": Retry(NoBackoff(), 0),  # one attempt: test-connection reports at once
    }
    with pem_file(s.ca, item="sslCa") as ca:
        if s.tls:
            params.update(ssl=True, ssl_cert_reqs=ssl.CERT_REQUIRED if ca else ssl.CERT_NONE, ssl_ca_certs=ca)
            params["ssl_check_hostname"] = bool(ca)
        client = redis.Redis(**params)
        try:
            client.ping()
        except (rex.RedisError, OSError) as exc:
            client.close()
            raise ConnectorError(_connect_message(s, exc)) from None
    try:
        yield client, s
    except rex.NoPermissionError as exc:
        raise ConnectorError(
            f"the service account {s.username} lacks a permission: {one_line(exc, s.password)}"
        ) from None
    except rex.RedisError as exc:
        raise ConnectorError(one_line(exc, s.password)) from None
    finally:
        client.close()


# -- the server's command categories -----------------------------------------------------------------


class Categories:
    """The server's command categories and their commands (``ACL CAT``), to evaluate command rules."""

    def __init__(self, client: redis.Redis):
        names = sorted(client.acl_cat())
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.acl_cat(name)
        self.members: dict[str, frozenset[str]] = {
            name: frozenset(cmds) for name, cmds in zip(names, pipe.execute(), strict=True)
        }
        self.universe: frozenset[str] = frozenset().union(*self.members.values())
        self._held: dict[str, list[str]] = {}  # rule string -> categories held; users often share rules
        self._by_command: dict[str, frozenset[str]] = {}
        for command in self.universe:
            self._by_command.setdefault(command.split("|", 1)[0], frozenset())
        for command in self.universe:
            head = command.split("|", 1)[0]
            self._by_command[head] = self._by_command[head] | {command}

    @property
    def names(self) -> list[str]:
        return list(self.members)

    def commands(self, token: str) -> frozenset[str]:
        """Commands a rule's operand names: ``@cat``, ``cmd`` (with its subcommands) or ``cmd|sub``."""
        if token.startswith("@"):
            name = token[1:]
            return self.universe if name == ALL else self.members.get(name, frozenset())
        token = token.lower()
        if "|" in token:
            return frozenset({token}) & self.universe or frozenset({token})
        return self._by_command.get(token, frozenset({token}))

    def allowed(self, rules: str) -> set[str]:
        """The commands a command rule string (``-@all +@read -keys +get``) allows."""
        allowed: set[str] = set()
        for token in rules.split():
            if token in ("allcommands", "+@all"):
                allowed = set(self.universe)
            elif token in ("nocommands", "-@all"):
                allowed = set()
            elif token[:1] == "+":
                allowed |= self.commands(token[1:])
            elif token[:1] == "-":
                allowed -= self.commands(token[1:])
        return allowed

    def held(self, rules: str) -> list[str]:
        """Category entitlements of a rule string: ``category:all``, else the categories fully allowed.

        Categories overlap (@bitmap is part of @read and @write), so a fully allowed category is listed only
        when it adds commands to the larger ones already listed: ``+@read +@write`` holds read and write,
        not also bitmap, string, list… which come with them.
        """
        cached = self._held.get(rules)
        if cached is None:
            cached = self._held[rules] = self._compute_held(rules)
        return list(cached)

    def _compute_held(self, rules: str) -> list[str]:
        allowed = self.allowed(rules)
        if self.universe <= allowed:
            return [f"category:{ALL}"]
        full = [(n, cmds) for n, cmds in self.members.items() if cmds and cmds <= allowed]
        full.sort(key=lambda item: (-len(item[1]), item[0]))
        covered: set[str] = set()
        held = []
        for name, cmds in full:
            if not cmds <= covered:
                held.append(name)
                covered |= cmds
        return [f"category:{n}" for n in sorted(held)]


# -- users -------------------------------------------------------------------------------------------


def _keys(tokens: list[str]) -> list[tuple[str, str]]:
    """``(entitlement prefix, pattern)`` for key and channel rules (``~p``, ``%R~p``, ``%RW~p``, ``&p``)."""
    out = []
    for token in tokens:
        if not token:
            continue
        if token == "allkeys":
            out.append(("keys", "*"))
        elif token == "allchannels":
            out.append(("channels", "*"))
        elif token.startswith("&"):
            out.append(("channels", token[1:]))
        elif token.startswith("~"):
            out.append(("keys", token[1:]))
        elif token.startswith("%"):
            perms, _, pattern = token[1:].partition("~")
            perms = perms.upper()
            kind = (
                "keys" if ("R" in perms and "W" in perms) else "keys-read" if "R" in perms else "keys-write"
            )
            out.append((kind, pattern))
    return out


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    return [t for v in value for t in str(v).split()]


@dataclass
class User:
    name: str
    enabled: bool
    nopass: bool
    passwords: int
    commands: str
    keys: list[tuple[str, str]]
    selectors: list[str]


def parse_user(name: str, info: dict[str, Any]) -> User:
    flags = [str(f) for f in info.get("flags") or []]
    keys = _keys(_split(info.get("keys")) + _split(info.get("channels")))
    commands = info.get("commands")
    if isinstance(commands, list):  # redis-py splits categories out; join them back in their order
        commands = " ".join(commands)
    categories = info.get("categories")
    if categories and not commands:
        commands = " ".join(categories)
    selectors = []
    for sel in info.get("selectors") or []:
        parts = dict(zip(sel[::2], sel[1::2], strict=False)) if isinstance(sel, list) else dict(sel)
        text = " ".join(str(parts.get(k) or "") for k in ("keys", "channels", "commands")).strip()
        selectors.append(f"({' '.join(text.split())})")
    return User(
        name=name,
        enabled="on" in flags,
        nopass="nopass" in flags,
        passwords=len(info.get("passwords") or []),
        commands=str(commands or ""),
        keys=keys,
        selectors=selectors,
    )


def _raw_getuser(client: redis.Redis | Any, name: str) -> Any:
    return client.execute_command("ACL", "GETUSER", name)


def _as_dict(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if isinstance(raw, dict):
        return raw
    return dict(zip(raw[::2], raw[1::2], strict=False))


def users(client: redis.Redis, s: Settings) -> Iterator[User]:
    """Governed users, their details fetched ``page_size`` at a time in one pipelined round trip."""
    names = sorted(n for n in client.acl_users() if s.user_pattern is None or s.user_pattern.search(n))
    for start in range(0, len(names), s.page_size):
        page = names[start : start + s.page_size]
        pipe = client.pipeline(transaction=False)
        for name in page:
            pipe.execute_command("ACL", "GETUSER", name)
        for name, raw in zip(page, pipe.execute(), strict=True):
            info = _as_dict(raw)
            if info is not None:  # deleted in between
                yield parse_user(name, info)


def read_user(client: redis.Redis, s: Settings, name: str) -> User:
    if s.user_pattern is not None and not s.user_pattern.search(name):
        raise ObjectNotFound(f"no account {name!r}: outside this source's scope (userNamePattern)")
    info = _as_dict(_raw_getuser(client, name))
    if info is None:
        raise ObjectNotFound(f"no account {name!r}: no such ACL user")
    return parse_user(name, info)


def account_object(user: User, cats: Categories) -> dict[str, Any]:
    held = cats.held(user.commands) + sorted({f"{kind}:{pattern}" for kind, pattern in user.keys})
    return {
        "identity": user.name,
        "key": {"simple": {"id": user.name}},
        "attributes": {
            "name": user.name,
            "enabled": user.enabled,
            "nopass": user.nopass,
            "passwords": user.passwords,
            "commandRules": user.commands,
            "selectors": user.selectors,
            GROUP_ATTRIBUTE: held,
        },
    }


# -- entitlements ------------------------------------------------------------------------------------


def category_entitlement(name: str, cats: Categories) -> dict[str, Any]:
    identity = f"category:{name}"
    everything = name == ALL
    return _entitlement(
        identity,
        name=f"Commands of @{name}",
        resource=identity,
        resource_name=f"@{name}",
        kind="command category",
        role="allowed",
        role_name="Allowed",
        commands=len(cats.universe if everything else cats.members.get(name, ())),
        implies=[f"category:{n}" for n in cats.names] if everything else [],
    )


def key_entitlement(kind: str, pattern: str) -> dict[str, Any]:
    _, resource_prefix, resource_kind, role, role_name = KEY_KINDS[kind]
    noun = "channels" if kind == "channels" else "keys"
    implies = [f"keys-read:{pattern}", f"keys-write:{pattern}"] if kind == "keys" else []
    return _entitlement(
        f"{kind}:{pattern}",
        name=f"{role_name} {noun} {pattern}",
        resource=f"{resource_prefix}:{pattern}",
        resource_name=pattern,
        kind=resource_kind,
        role=role,
        role_name=role_name,
        commands=None,
        implies=implies,
    )


def _entitlement(identity: str, *, name, resource, resource_name, kind, role, role_name, commands, implies):
    return {
        "identity": identity,
        "key": {"simple": {"id": identity}},
        "type": ENTITLEMENT_TYPE,
        "attributes": {
            "id": identity,
            "name": name,
            "resource": resource,
            "resourceName": resource_name,
            "resourceKind": kind,
            "privilege": role,
            "privilegeName": role_name,
            "commands": commands,
            "implies": implies,
        },
    }


def parse_entitlement(identity: Any) -> tuple[str, str]:
    """``("category", name)`` or ``(key kind, pattern)``. Raises :class:`InputError`."""
    if isinstance(identity, str):
        kind, sep, rest = identity.partition(":")
        if sep and rest and (kind == "category" or kind in KEY_KINDS):
            return kind, rest
    raise InputError(
        f"{identity!r} is not an entitlement of this connector (expected category:<name>, keys:<pattern>, "
        "keys-read:<pattern>, keys-write:<pattern> or channels:<pattern>)"
    )


def _check_pattern(kind: str, pattern: str) -> None:
    if kind == "category":
        if not re.fullmatch(r"[a-z_-]+", pattern):
            raise InputError(f"{pattern!r} is not a command category name")
    elif any(c.isspace() for c in pattern) or not pattern:
        raise InputError(f"{kind}:{pattern!r}: a pattern cannot contain spaces")


# -- handlers: reading -------------------------------------------------------------------------------


@connector.command("std:test-connection")
def test_connection(context, input, res):
    with connect(context.config) as (client, s):
        missing = []
        for label, call in (
            ("ACL USERS", client.acl_users),
            ("ACL CAT", client.acl_cat),
            ("ACL GETUSER", lambda: _raw_getuser(client, s.username)),
        ):
            try:
                call()
            except rex.NoPermissionError:
                missing.append(label)
        if missing:
            raise ConnectorError(
                f"the service account {s.username} may not run {', '.join(missing)}: "
                f"ACL SETUSER {s.username} +acl|users +acl|cat +acl|getuser"
            )
        if s.provisioning:
            needed = ["setuser", "deluser"] + {"aclfile": ["save"], "config": []}.get(s.persistence, [])
            for sub in needed:
                try:
                    verdict = client.execute_command("ACL", "DRYRUN", s.username, "ACL", sub.upper(), "x")
                except rex.NoPermissionError:
                    verdict = "no permission to run ACL DRYRUN"
                except rex.ResponseError:
                    verdict = "OK"  # a server without ACL DRYRUN (before 7.0): not checked here
                if verdict != "OK":
                    raise ConnectorError(
                        f"the service account {s.username} may not run ACL {sub.upper()}, needed for provisioning: "
                        f"ACL SETUSER {s.username} +acl|{sub}, or turn provisioning off"
                    )
            if s.persistence == "config":
                verdict = client.execute_command("ACL", "DRYRUN", s.username, "CONFIG", "REWRITE")
                if verdict != "OK":
                    raise ConnectorError(
                        f"the service account {s.username} may not run CONFIG REWRITE, needed for persistence "
                        f"config: ACL SETUSER {s.username} +config|rewrite"
                    )
    res.send({})


@connector.command("std:account:list")
def account_list(context, input, res):
    with connect(context.config) as (client, s):
        cats = Categories(client)
        for user in users(client, s):
            res.send(account_object(user, cats))


@connector.command("std:account:read")
def account_read(context, input, res):
    with connect(context.config) as (client, s):
        res.send(account_object(read_user(client, s, input["identity"]), Categories(client)))


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    with connect(context.config) as (client, s):
        cats = Categories(client)
        res.send(category_entitlement(ALL, cats))
        for name in cats.names:
            res.send(category_entitlement(name, cats))
        patterns: dict[tuple[str, str], None] = {}
        for pattern in s.key_patterns:
            patterns[("keys", pattern)] = None
        for user in users(client, s):
            patterns.update(dict.fromkeys(user.keys))
            res.keep_alive()
        # Every key pattern is offered with each of its roles; channel patterns have one.
        expanded: dict[tuple[str, str], None] = {}
        for kind, pattern in patterns:
            kinds = ["channels"] if kind == "channels" else ["keys", "keys-read", "keys-write"]
            expanded.update(dict.fromkeys((k, pattern) for k in kinds))
        for kind, pattern in sorted(expanded):
            res.send(key_entitlement(kind, pattern))


@connector.command("std:entitlement:read")
def entitlement_read(context, input, res):
    kind, rest = parse_entitlement(input["identity"])
    with connect(context.config) as (client, s):
        cats = Categories(client)
        if kind == "category":
            if rest != ALL and rest not in cats.members:
                raise ObjectNotFound(
                    f"no entitlement {input['identity']!r}: the server has no category @{rest}"
                )
            res.send(category_entitlement(rest, cats))
            return
        wanted = {"channels": {"channels"}}.get(kind, {"keys", "keys-read", "keys-write"})
        known = kind == "keys" and rest in s.key_patterns
        for user in users(client, s):
            if known:
                break
            known = any(k in wanted and p == rest for k, p in user.keys)
        if not known:
            raise ObjectNotFound(f"no entitlement {input['identity']!r}: no user is granted that pattern")
        res.send(key_entitlement(kind, rest))


# -- provisioning ------------------------------------------------------------------------------------


def _provisioning(s: Settings) -> None:
    if not s.provisioning:
        raise ConnectorError(
            "provisioning is turned off for this source: set the config item 'provisioning' to true "
            "(the service account needs +acl|setuser +acl|deluser)"
        )


def password_hash(password: str) -> str:
    """The ``#<sha256 hex>`` form ACL SETUSER accepts: the server stores exactly this hash."""
    return "#" + hashlib.sha256(password.encode("utf-8")).hexdigest()


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InputError(
            f"{name!r} is not a usable ACL user name (no spaces, quotes or the characters > < # ~ % & ( ))"
        )
    return name


def rules_for(user: User | None, cats: Categories, grant: list[str], revoke: list[str]) -> list[str]:
    """ACL SETUSER rules granting and revoking entitlements; key and channel removals rebuild the lists."""
    rules: list[str] = []
    for identity in revoke:
        kind, rest = parse_entitlement(identity)
        if kind == "category":
            rules.append(f"-@{rest}")
    removed_keys = {parse_entitlement(i) for i in revoke if parse_entitlement(i)[0] != "category"}
    current = list(user.keys) if user else []
    for group, reset in (("keys", "resetkeys"), ("channels", "resetchannels")):
        in_group = [(k, p) for k, p in current if (k == "channels") == (group == "channels")]
        if any(item in removed_keys for item in in_group):
            rules.append(reset)
            rules.extend(KEY_KINDS[k][0] + p for k, p in in_group if (k, p) not in removed_keys)
    for identity in grant:
        kind, rest = parse_entitlement(identity)
        _check_pattern(kind, rest)
        if kind == "category":
            if rest != ALL and rest not in cats.members:
                raise ObjectNotFound(f"no entitlement {identity!r}: the server has no category @{rest}")
            rules.append(f"+@{rest}")
        else:
            rules.append(KEY_KINDS[kind][0] + rest)
    return rules


def _persist(client: redis.Redis, s: Settings) -> None:
    try:
        if s.persistence == "aclfile":
            client.execute_command("ACL", "SAVE")
        elif s.persistence == "config":
            client.execute_command("CONFIG", "REWRITE")
    except rex.RedisError as exc:
        raise ConnectorError(
            f"the change is made but could not be saved ({s.persistence}): {one_line(exc, s.password)}"
        ) from None


def _setuser(
    client: redis.Redis, s: Settings, name: str, rules: list[str], action: str, *secrets: str
) -> None:
    try:
        client.execute_command("ACL", "SETUSER", name, *rules)
    except rex.NoPermissionError as exc:
        raise ConnectorError(f"{action}: permission denied ({one_line(exc, s.password, *secrets)})") from None
    except rex.ResponseError as exc:
        raise InputError(f"{action}: {one_line(exc, s.password, *secrets)}") from None


SETTABLE = frozenset({"password", "enabled"})


def _scalar_rules(attribute: str, value: Any) -> list[str]:
    if attribute == "enabled":
        if not isinstance(value, bool):
            raise InputError(f"attribute 'enabled' must be true or false, got {value!r}")
        return ["on" if value else "off"]
    if attribute == "password":
        if value in (None, ""):
            return ["resetpass"]
        if not isinstance(value, str):
            raise InputError("attribute 'password' must be a string")
        return ["resetpass", password_hash(value)]
    raise InputError(f"attribute {attribute!r} cannot be set; settable: enabled, memberOf, password")


@connector.command("std:account:create")
def account_create(context, input, res):
    attributes = dict(input.get("attributes") or {})
    name = _check_name(input.get("identity") or attributes.get("name"))
    attributes.pop("name", None)
    wanted = [str(v) for v in as_list(attributes.pop(GROUP_ATTRIBUTE, None))]
    password = attributes.get("password")
    rules = ["on" if attributes.pop("enabled", True) is not False else "off"]
    for attribute, value in attributes.items():
        rules += _scalar_rules(attribute, value)
    with connect(context.config) as (client, s):
        _provisioning(s)
        if s.user_pattern is not None and not s.user_pattern.search(name):
            raise InputError(f"user name {name!r} is outside this source's scope (userNamePattern)")
        if _raw_getuser(client, name) is not None:
            raise ConnectorError(f"cannot create {name}: an ACL user with that name already exists")
        cats = Categories(client)
        rules += rules_for(None, cats, list(dict.fromkeys(wanted)), [])
        _setuser(client, s, name, rules, f"cannot create {name}", password or "")
        _persist(client, s)
        res.send(account_object(read_user(client, s, name), cats))


@connector.command("std:account:update")
def account_update(context, input, res):
    todo = changes(input)
    name = input["identity"]
    with connect(context.config) as (client, s):
        _provisioning(s)
        cats = Categories(client)
        user = read_user(client, s, name)
        held = [f"{k}:{p}" for k, p in dict.fromkeys(user.keys)]
        target = list(held)
        rules: list[str] = []
        category_rules: list[str] = []
        secrets: list[str] = []
        for change in todo:
            if change.attribute == GROUP_ATTRIBUTE:
                values = [str(v) for v in change.values]
                categories = [
                    parse_entitlement(v)[1] for v in values if parse_entitlement(v)[0] == "category"
                ]
                others = [v for v in values if parse_entitlement(v)[0] != "category"]
                for category in categories:
                    if category != ALL and category not in cats.members:
                        raise ObjectNotFound(
                            f"no entitlement 'category:{category}': the server has no such category"
                        )
                if change.op == "Set":
                    category_rules = ["nocommands", *(f"+@{c}" for c in categories)]
                    target = list(dict.fromkeys(others))
                elif change.op == "Add":
                    category_rules += [f"+@{c}" for c in categories]
                    target.extend(v for v in others if v not in target)
                else:
                    # -@<category> whether or not it is listed: it may be held through +@all or others.
                    category_rules += [f"-@{c}" for c in categories]
                    target = [v for v in target if v not in others]
            elif change.op != "Set":
                raise InputError(f"attribute {change.attribute!r} is single-valued: use Set, not {change.op}")
            else:
                if change.attribute == "enabled" and change.value is False and name == s.username:
                    raise ConnectorError(
                        f"refusing to disable {name}: it is the service account this source connects as"
                    )
                if change.attribute == "password" and isinstance(change.value, str):
                    secrets.append(change.value)
                rules += _scalar_rules(change.attribute, change.value)
        grant = [v for v in target if v not in held]
        revoke = [v for v in held if v not in target]
        rules += category_rules + rules_for(user, cats, grant, revoke)
        if rules:
            _setuser(client, s, name, rules, f"cannot update {name}", *secrets)
            _persist(client, s)
        res.send(account_object(read_user(client, s, name), cats))


def _switch(context, input, res, enabled: bool) -> None:
    name = input["identity"]
    with connect(context.config) as (client, s):
        _provisioning(s)
        if not enabled and name == s.username:
            raise ConnectorError(
                f"refusing to disable {name}: it is the service account this source connects as"
            )
        read_user(client, s, name)
        _setuser(
            client,
            s,
            name,
            ["on" if enabled else "off"],
            f"cannot {'enable' if enabled else 'disable'} {name}",
        )
        _persist(client, s)
        res.send(account_object(read_user(client, s, name), Categories(client)))


@connector.command("std:account:enable")
def account_enable(context, input, res):
    _switch(context, input, res, True)


@connector.command("std:account:disable")
def account_disable(context, input, res):
    _switch(context, input, res, False)


@connector.command("std:account:delete")
def account_delete(context, input, res):
    name = input["identity"]
    with connect(context.config) as (client, s):
        _provisioning(s)
        if name in (s.username, "default"):
            raise ConnectorError(
                f"refusing to delete {name}: "
                + (
                    "it is the service account this source connects as"
                    if name == s.username
                    else "Redis keeps the default user"
                )
            )
        read_user(client, s, name)
        try:
            client.execute_command("ACL", "DELUSER", name)
        except rex.NoPermissionError as exc:
            raise ConnectorError(
                f"cannot delete {name}: permission denied ({one_line(exc, s.password)})"
            ) from None
        _persist(client, s)
    res.send({})
