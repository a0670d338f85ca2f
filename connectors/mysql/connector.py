"""The MySQL / MariaDB connector: accounts, databases and roles of a server (see ``README.md``).

* Accounts are ``user@host`` accounts (not roles), keyed by ``user@host``.
* Entitlements (type ``privilege``) are ``database:<db>:<PRIVILEGE>`` (SELECT, INSERT… and ALL) and
  ``role:<role>`` (MariaDB and MySQL 8 roles). An account's ``memberOf`` lists its direct grants; what a role
  passes on to its members is in the role's ``implies``.
* Listings stream from unbuffered cursors (``SSCursor``): each account row carries its role and database
  grants, aggregated by the server, so nothing else is queried while rows arrive.
* Account and role names are sent as quoted string literals, database names as backquoted identifiers with
  the ``_`` and ``%`` wildcards escaped; privilege keywords come from a fixed list. Passwords never appear in
  messages; on MariaDB only their ``mysql_native_password`` hash is sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from pymysql.cursors import SSCursor

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

ENTITLEMENT_TYPE = "privilege"
GROUP_ATTRIBUTE = "memberOf"
SYSTEM_DATABASES = ("information_schema", "performance_schema", "mysql", "sys")
TLS_MODES = ("preferred", "disabled", "required", "verify")
ALL = "ALL"
# Column name (without _priv) -> privilege keyword, where the keyword is not the column name in capitals.
PRIVILEGE_NAMES = {
    "Create_tmp_table": "CREATE TEMPORARY TABLES",
    "Repl_slave": "REPLICATION SLAVE",
    "Repl_client": "REPLICATION CLIENT",
    "Show_db": "SHOW DATABASES",
    "Grant": "GRANT OPTION",
}
KEYWORD = re.compile(r"^[A-Z]+( [A-Z]+)*$")  # a privilege keyword; anything else is never put in SQL
ER_ACCESS_DENIED = 1045
# MariaDB answers an unknown user with 1698 instead of 1045 in some account/plugin setups.
ER_ACCESS_DENIED_NO_PASSWORD = 1698
ER_DBACCESS_DENIED = 1044
ER_TABLEACCESS_DENIED = 1142
ER_SPECIFIC_ACCESS_DENIED = 1227
ER_CANNOT_USER = 1396
ER_NONEXISTING_GRANT = 1141
CR_CONN_HOST_ERROR = 2003
CR_UNKNOWN_HOST = 2005


# -- settings and connections ------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    username: str
    password: str | None
    tls: str
    ca: str | None
    connect_timeout: int
    provisioning: bool
    user_pattern: str | None
    database_pattern: str | None
    default_host: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def settings(config: dict[str, Any]) -> Settings:
    tls = _text(config, "tlsMode") or ("verify" if config.get("connectionOption") == "tls" else "preferred")
    if tls not in TLS_MODES:
        raise ConfigError(f"config item 'tlsMode' must be one of {', '.join(TLS_MODES)}", item="tlsMode")
    ca = _text(config, "sslCa")
    if tls == "verify" and not ca:
        raise ConfigError("config item 'sslCa': TLS mode verify needs the CA certificate", item="sslCa")
    provisioning = config.get("provisioning", False)
    return Settings(
        host=_text(config, "host") or "",
        port=_int(config, "port", 3306, 1, 65535),
        username=_text(config, "username") or "",
        password=config.get("password") or None,
        tls=tls,
        ca=ca,
        connect_timeout=_int(config, "connectTimeout", 10, 1, 3600),
        provisioning=provisioning is True or str(provisioning).lower() == "true",
        user_pattern=_text(config, "userNamePattern"),
        database_pattern=_text(config, "databaseNamePattern"),
        default_host=_text(config, "defaultHost") or "%",
    )


def _connect_message(s: Settings, exc: Exception) -> str:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    raw = one_line(exc.args[1] if len(exc.args) > 1 else exc, s.password)
    low = raw.lower()
    where = s.where
    if code in (ER_ACCESS_DENIED, ER_ACCESS_DENIED_NO_PASSWORD):
        return (
            f"authentication failed for user {s.username} at {where}: wrong password, no such user, "
            "or the user may not connect from this host"
        )
    if "ssl is required but the server doesn't support it" in low:
        return f"cannot connect to {where}: the server does not support TLS (tlsMode {s.tls})"
    if "hostname" in low and "doesn't match" in low or "ip address mismatch" in low:
        return f"cannot connect to {where}: the server certificate does not match host name {s.host}"
    if "certificate verify failed" in low:
        return f"cannot connect to {where}: the server certificate is not signed by the configured CA"
    if "connection refused" in low:
        return f"cannot connect to {where}: connection refused"
    if (
        code == CR_UNKNOWN_HOST
        or "name or service not known" in low
        or "errno -2]" in low
        or "errno -3]" in low
    ):
        return f"cannot connect to {where}: unknown host {s.host}"
    if "timed out" in low:
        return f"cannot connect to {where}: no answer within {s.connect_timeout} s"
    if code in (1040, 1203):
        return f"cannot connect to {where}: too many connections"
    if code == 1129:
        return f"cannot connect to {where}: this host is blocked by the server (FLUSH HOSTS)"
    return f"cannot connect to {where}: {raw}"


def _sql_message(exc: pymysql.Error, s: Settings, action: str = "", *secrets: str | None) -> str:
    text = exc.args[1] if len(exc.args) > 1 else str(exc)
    prefix = f"{action}: " if action else ""
    return prefix + one_line(text, s.password, *secrets)


@dataclass
class Server:
    """What the connection learnt about the server: flavour and the privilege columns of its grant tables."""

    mariadb: bool
    version: str
    db_columns: list[str] = field(default_factory=list)  # *_priv columns of mysql.db, without Grant_priv
    user_columns: list[str] = field(default_factory=list)  # *_priv columns of mysql.user, without Grant_priv

    @property
    def db_privileges(self) -> list[str]:
        return [privilege_name(c) for c in self.db_columns]


def privilege_name(column: str) -> str:
    base = column[: -len("_priv")] if column.endswith("_priv") else column
    return PRIVILEGE_NAMES.get(base, base.replace("_", " ").upper())


class Session:
    """A connection with its settings and server description."""

    def __init__(self, conn: pymysql.connections.Connection, s: Settings, server: Server):
        self.conn = conn
        self.s = s
        self.server = server

    def rows(self, query: str, params: Any = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall())

    def execute(self, query: str, params: Any = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(query, params)

    def stream(self, query: str, params: Any = None) -> Iterator[tuple]:
        """Rows of ``query`` from an unbuffered cursor, as the server sends them."""
        cur = self.conn.cursor(SSCursor)
        try:
            cur.execute(query, params)
            while True:
                row = cur.fetchone()
                if row is None:
                    return
                yield row
        finally:
            cur.close()


def _columns(session: Session, table: str) -> list[str]:
    rows = session.rows(f"SHOW COLUMNS FROM mysql.{table} LIKE %s", ("%\\_priv",))
    return [r[0] for r in rows if r[0] != "Grant_priv"]


@contextlib.contextmanager
def connect(config: dict[str, Any], *, describe: bool = True) -> Iterator[Session]:
    s = settings(config)
    params: dict[str, Any] = {
        "host": s.host,
        "port": s.port,
        "user": s.username,
        "password": s.password or "",
        "connect_timeout": s.connect_timeout,
        "read_timeout": max(s.connect_timeout, 300),
        "charset": "utf8mb4",
        "autocommit": True,
        "program_name": "access-governance-connector",
    }
    with pem_file(s.ca, item="sslCa") as ca:
        if s.tls == "disabled":
            params["ssl_disabled"] = True
        elif s.tls == "required":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            params["ssl"] = ctx
        elif s.tls == "verify":
            params.update(ssl_ca=ca, ssl_verify_cert=True, ssl_verify_identity=True)
        try:
            conn = pymysql.connect(**params)
        except pymysql.Error as exc:
            raise ConnectorError(_connect_message(s, exc)) from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectorError(_connect_message(s, exc)) from None
    try:
        session = Session(conn, s, Server(mariadb=False, version=""))
        if describe:
            version = session.rows("SELECT VERSION()")[0][0]
            session.server.version = version
            session.server.mariadb = "mariadb" in version.lower()
            session.execute("SET SESSION group_concat_max_len = 16777216")
        yield session
    except pymysql.Error as exc:
        raise ConnectorError(_sql_message(exc, s)) from None
    finally:
        with contextlib.suppress(Exception):
            conn.close()


def _describe_grant_tables(session: Session) -> None:
    session.server.db_columns = _columns(session, "db")
    session.server.user_columns = _columns(session, "user")


# -- SQL ---------------------------------------------------------------------------------------------


def _scope(column: str, pattern: str | None, params: list[Any]) -> str:
    if pattern is None:
        return "TRUE"
    params.append(pattern)
    return f"{column} REGEXP %s"


def _db_json(server: Server, alias: str) -> str:
    cols = ", ".join(f"{alias}.`{c}`" for c in server.db_columns)
    return f"JSON_ARRAY({alias}.Db, {cols})"


def accounts_query(session: Session, user: str | None = None, host: str | None = None) -> tuple[str, list]:
    server, s = session.server, session.s
    params: list[Any] = []
    privs = ", ".join(f"u.`{c}`" for c in server.user_columns)
    dbs = f"(SELECT JSON_ARRAYAGG({_db_json(server, 'd')}) FROM mysql.db d WHERE d.User = u.User AND d.Host = u.Host)"
    if server.mariadb:
        query = f"""
SELECT u.User, u.Host, JSON_VALUE(g.Priv, '$.account_locked') = 1, u.password_expired = 'Y', u.plugin,
  NULLIF(u.default_role, ''), u.max_user_connections,
  (SELECT JSON_ARRAYAGG(JSON_ARRAY(rm.Role, '')) FROM mysql.roles_mapping rm
     WHERE rm.User = u.User AND rm.Host = u.Host AND rm.Role <> ''),
  {dbs}, JSON_ARRAY({privs})
FROM mysql.user u JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host
WHERE u.is_role = 'N' AND {_scope("u.User", s.user_pattern, params)}"""
    else:
        query = f"""
SELECT u.User, u.Host, u.account_locked = 'Y', u.password_expired = 'Y', u.plugin,
  (SELECT CONCAT(dr.DEFAULT_ROLE_USER, '@', dr.DEFAULT_ROLE_HOST) FROM mysql.default_roles dr
     WHERE dr.USER = u.User AND dr.HOST = u.Host LIMIT 1),
  u.max_user_connections,
  (SELECT JSON_ARRAYAGG(JSON_ARRAY(re.FROM_USER, re.FROM_HOST)) FROM mysql.role_edges re
     WHERE re.TO_USER = u.User AND re.TO_HOST = u.Host),
  {dbs}, JSON_ARRAY({privs})
FROM mysql.user u
WHERE NOT (u.account_locked = 'Y' AND u.authentication_string = '')
  AND {_scope("u.User", s.user_pattern, params)}"""
    if user is not None:
        query += " AND u.User = %s AND u.Host = %s"
        params += [user, host]
    return query + " ORDER BY u.User, u.Host", params


def roles_query(session: Session, name: str | None = None) -> tuple[str, list]:
    server, s = session.server, session.s
    params: list[Any] = []
    dbs = f"(SELECT JSON_ARRAYAGG({_db_json(server, 'd')}) FROM mysql.db d WHERE d.User = r.User AND d.Host = r.Host)"
    if server.mariadb:
        query = f"""
SELECT r.User, r.Host,
  (SELECT JSON_ARRAYAGG(JSON_ARRAY(rm.Role, '')) FROM mysql.roles_mapping rm
     WHERE rm.User = r.User AND rm.Host = r.Host AND rm.Role <> ''),
  {dbs}
FROM mysql.user r WHERE r.is_role = 'Y' AND {_scope("r.User", s.user_pattern, params)}"""
    else:
        query = f"""
SELECT r.User, r.Host,
  (SELECT JSON_ARRAYAGG(JSON_ARRAY(re.FROM_USER, re.FROM_HOST)) FROM mysql.role_edges re
     WHERE re.TO_USER = r.User AND re.TO_HOST = r.Host),
  {dbs}
FROM mysql.user r WHERE r.account_locked = 'Y' AND r.authentication_string = ''
  AND {_scope("r.User", s.user_pattern, params)}"""
    if name is not None:
        role_user, role_host = _role_account(session, name)
        query += " AND r.User = %s AND r.Host = %s"
        params += [role_user, role_host]
    return query + " ORDER BY r.User, r.Host", params


def databases_query(session: Session, name: str | None = None) -> tuple[str, list]:
    params: list[Any] = list(SYSTEM_DATABASES)
    marks = ", ".join(["%s"] * len(SYSTEM_DATABASES))
    query = (
        "SELECT SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
        f"WHERE SCHEMA_NAME NOT IN ({marks}) AND {_scope('SCHEMA_NAME', session.s.database_pattern, params)}"
    )
    if name is not None:
        query += " AND SCHEMA_NAME = %s"
        params.append(name)
    return query + " ORDER BY SCHEMA_NAME", params


def governed_databases(session: Session) -> set[str]:
    return {r[0] for r in session.rows(*databases_query(session))}


# -- names -------------------------------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """A backquoted identifier for a statement run with parameters (so ``%`` is doubled for PyMySQL)."""
    return "`" + name.replace("`", "``").replace("%", "%%") + "`"


def grant_database(name: str) -> str:
    """A database name for ``GRANT … ON <db>.*``: backquoted, with the ``_`` and ``%`` wildcards escaped."""
    escaped = name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return quote_identifier(escaped)


def unescape_db(db: str) -> tuple[str, bool]:
    """A ``mysql.db`` Db value as a database name, and whether it is a pattern (has unescaped wildcards)."""
    out, pattern, i = [], False, 0
    while i < len(db):
        c = db[i]
        if c == "\\" and i + 1 < len(db):
            out.append(db[i + 1])
            i += 2
            continue
        if c in "%":
            pattern = True
        out.append(c)
        i += 1
    return "".join(out), pattern


def split_account(identity: str, default_host: str = "%") -> tuple[str, str]:
    user, at, host = identity.rpartition("@")
    if not at:
        return identity, default_host
    return user, host


def account_id(user: str, host: str) -> str:
    return f"{user}@{host}"


def role_id(server: Server, user: str, host: str) -> str:
    if server.mariadb or host == "%":
        return f"role:{user}"
    return f"role:{user}@{host}"


def _role_account(session: Session, name: str) -> tuple[str, str]:
    if session.server.mariadb:
        return name, ""
    user, at, host = name.rpartition("@")
    return (user, host) if at else (name, "%")


def parse_entitlement(identity: Any) -> tuple[str, str, str | None]:
    """``("role", name, None)`` or ``("database", db, PRIVILEGE)``. Raises :class:`InputError`."""
    if isinstance(identity, str):
        if identity.startswith("role:") and len(identity) > len("role:"):
            return "role", identity[len("role:") :], None
        if identity.startswith("database:"):
            db, _, privilege = identity[len("database:") :].rpartition(":")
            if db and KEYWORD.match(privilege):
                return "database", db, privilege
    raise InputError(
        f"{identity!r} is not an entitlement of this connector "
        "(expected role:<role> or database:<database>:<PRIVILEGE>, e.g. database:sales:SELECT)"
    )


# -- objects -----------------------------------------------------------------------------------------


def _db_grants(server: Server, raw: Any, databases: set[str]) -> tuple[list[str], list[str]]:
    """``database:…`` entitlements of ``mysql.db`` rows, and the other (wildcard, out of scope) grants."""
    held: list[str] = []
    other: list[str] = []
    privileges = server.db_privileges
    for row in json.loads(raw) if raw else []:
        db_raw, flags = row[0], row[1:]
        granted = [p for p, flag in zip(privileges, flags, strict=False) if flag == "Y"]
        if not granted:
            continue
        db, pattern = unescape_db(db_raw)
        if pattern or db not in databases:
            other.append(f"{db_raw}.*: {', '.join(granted)}")
            continue
        if len(granted) == len(privileges):
            held.append(f"database:{db}:{ALL}")
        else:
            held.extend(f"database:{db}:{p}" for p in granted)
    return sorted(held), sorted(other)


def _role_grants(
    session: Session, raw: Any, roles_in_scope: re.Pattern | None
) -> tuple[list[str], list[str]]:
    held, other = [], []
    for user, host in json.loads(raw) if raw else []:
        identity = role_id(session.server, user, host)
        if roles_in_scope is None or roles_in_scope.search(user):
            held.append(identity)
        else:
            other.append(identity)
    return sorted(held), sorted(other)


def _pattern(session: Session) -> re.Pattern | None:
    p = session.s.user_pattern
    if p is None:
        return None
    try:
        return re.compile(p)
    except re.error as exc:
        raise ConfigError(f"config item 'userNamePattern': invalid regular expression: {exc}") from None


def _obj(identity: str, attributes: dict[str, Any], ent_type: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "identity": identity,
        "key": {"simple": {"id": identity}},
        "attributes": attributes,
    }
    if ent_type is not None:
        obj["type"] = ent_type
    return obj


def account_object(session: Session, row: tuple, databases: set[str], roles: re.Pattern | None) -> dict:
    user, host, locked, expired, plugin, default_role, max_conn, role_json, db_json, priv_json = row
    role_held, role_other = _role_grants(session, role_json, roles)
    db_held, db_other = _db_grants(session.server, db_json, databases)
    flags = json.loads(priv_json) if priv_json else []
    global_privileges = [
        privilege_name(c) for c, f in zip(session.server.user_columns, flags, strict=False) if f == "Y"
    ]
    if global_privileges and len(global_privileges) == len(session.server.user_columns):
        global_privileges = ["ALL PRIVILEGES"]
    identity = account_id(user, host)
    return _obj(
        identity,
        {
            "id": identity,
            "user": user,
            "host": host,
            "enabled": not bool(locked),
            "passwordExpired": bool(expired),
            "authPlugin": plugin or None,
            "defaultRole": default_role,
            "maxUserConnections": int(max_conn or 0) or None,
            "globalPrivileges": global_privileges,
            GROUP_ATTRIBUTE: role_held + db_held,
            "otherGrants": role_other + db_other,
        },
    )


def database_entitlement(db: str, privilege: str, privileges: list[str], charset: str | None) -> dict:
    identity = f"database:{db}:{privilege}"
    everything = privilege == ALL
    return _obj(
        identity,
        {
            "id": identity,
            "name": f"{'ALL PRIVILEGES' if everything else privilege} on database {db}",
            "resource": f"database:{db}",
            "resourceName": db,
            "resourceKind": "database",
            "privilege": privilege,
            "privilegeName": "All privileges" if everything else privilege.capitalize(),
            "charset": charset,
            "implies": [f"database:{db}:{p}" for p in privileges] if everything else [],
        },
        ENTITLEMENT_TYPE,
    )


def role_entitlement(session: Session, row: tuple, databases: set[str], roles: re.Pattern | None) -> dict:
    user, host, role_json, db_json = row
    identity = role_id(session.server, user, host)
    name = identity[len("role:") :]
    role_held, _ = _role_grants(session, role_json, roles)
    db_held, _ = _db_grants(session.server, db_json, databases)
    return _obj(
        identity,
        {
            "id": identity,
            "name": f"Member of role {name}",
            "resource": identity,
            "resourceName": name,
            "resourceKind": "role",
            "privilege": "member",
            "privilegeName": "Member",
            "charset": None,
            "implies": role_held + db_held,
        },
        ENTITLEMENT_TYPE,
    )


def read_account(session: Session, identity: str, databases: set[str] | None = None) -> dict:
    user, host = split_account(identity, session.s.default_host)
    rows = session.rows(*accounts_query(session, user, host))
    if not rows:
        raise ObjectNotFound(f"no account {identity!r}: {_account_problem(session, user, host)}")
    if databases is None:
        databases = governed_databases(session)
    return account_object(session, rows[0], databases, _pattern(session))


def _account_problem(session: Session, user: str, host: str) -> str:
    pattern = session.s.user_pattern
    if pattern and not session.rows("SELECT %s REGEXP %s", (user, pattern))[0][0]:
        return f"user {user!r} is outside this source's scope (userNamePattern)"
    if session.rows("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, host)):
        return f"{user}@{host} is a role, not an account"
    hosts = [r[0] for r in session.rows("SELECT Host FROM mysql.user WHERE User = %s ORDER BY Host", (user,))]
    if hosts:
        return f"user {user!r} exists only from host(s) {', '.join(hosts)}"
    return "no such user on the server"


def find_entitlement(session: Session, identity: str, databases: set[str] | None = None) -> dict:
    kind, name, privilege = parse_entitlement(identity)
    if databases is None:
        databases = governed_databases(session)
    if kind == "role":
        rows = session.rows(*roles_query(session, name))
        if not rows:
            raise ObjectNotFound(f"no entitlement {identity!r}: no role {name!r} in this source's scope")
        return role_entitlement(session, rows[0], databases, _pattern(session))
    privileges = session.server.db_privileges
    if privilege != ALL and privilege not in privileges:
        raise InputError(
            f"{identity!r}: {privilege} is not a database privilege of this server "
            f"({', '.join(privileges)}, {ALL})"
        )
    rows = session.rows(*databases_query(session, name))
    if not rows:
        raise ObjectNotFound(f"no entitlement {identity!r}: no database {name!r} in this source's scope")
    return database_entitlement(name, privilege, privileges, rows[0][1])


# -- handlers: reading -------------------------------------------------------------------------------


def _service_privileges(session: Session) -> set[str]:
    rows = session.rows(
        "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = CONCAT("
        "'''', SUBSTRING(CURRENT_USER(), 1, CHAR_LENGTH(CURRENT_USER()) - CHAR_LENGTH("
        "SUBSTRING_INDEX(CURRENT_USER(), '@', -1)) - 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')"
    )
    return {r[0] for r in rows}


@connector.command("std:test-connection")
def test_connection(context, input, res):
    with connect(context.config) as session:
        s = session.s
        _pattern(session)
        tables = (
            ["user", "db", "global_priv", "roles_mapping"]
            if session.server.mariadb
            else ["user", "db", "role_edges", "default_roles"]
        )
        unreadable = []
        for table in tables:
            try:
                session.rows(f"SELECT 1 FROM mysql.{table} LIMIT 1")
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in (ER_TABLEACCESS_DENIED, ER_DBACCESS_DENIED):
                    raise
                unreadable.append(f"mysql.{table}")
        if unreadable:
            raise ConnectorError(
                f"the service account {s.username} cannot read {', '.join(unreadable)}: "
                f"GRANT SELECT ON mysql.* TO the service account"
            )
        try:
            for pattern in (s.user_pattern, s.database_pattern):
                if pattern:
                    session.rows("SELECT '' REGEXP %s", (pattern,))
        except pymysql.Error as exc:
            raise ConfigError(
                f"invalid regular expression in userNamePattern or databaseNamePattern: "
                f"{_sql_message(exc, s)}"
            ) from None
        privileges = _service_privileges(session)
        if "SHOW DATABASES" not in privileges:
            raise ConnectorError(
                f"the service account {s.username} lacks SHOW DATABASES, needed to list every database: "
                "GRANT SHOW DATABASES ON *.* TO the service account"
            )
        if s.provisioning and "CREATE USER" not in privileges:
            raise ConnectorError(
                f"the service account {s.username} lacks CREATE USER, needed for provisioning: "
                "GRANT CREATE USER ON *.* TO the service account, or turn provisioning off"
            )
    res.send({})


@connector.command("std:account:list")
def account_list(context, input, res):
    with connect(context.config) as session:
        _describe_grant_tables(session)
        databases = governed_databases(session)
        roles = _pattern(session)
        with contextlib.closing(session.stream(*accounts_query(session))) as rows:
            for row in rows:
                res.send(account_object(session, row, databases, roles))


@connector.command("std:account:read")
def account_read(context, input, res):
    with connect(context.config) as session:
        _describe_grant_tables(session)
        res.send(read_account(session, input["identity"]))


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    with connect(context.config) as session:
        _describe_grant_tables(session)
        privileges = session.server.db_privileges
        with contextlib.closing(session.stream(*databases_query(session))) as rows:
            for db, charset in rows:
                for privilege in (ALL, *privileges):
                    res.send(database_entitlement(db, privilege, privileges, charset))
        databases = governed_databases(session)
        roles = _pattern(session)
        with contextlib.closing(session.stream(*roles_query(session))) as rows:
            for row in rows:
                res.send(role_entitlement(session, row, databases, roles))


@connector.command("std:entitlement:read")
def entitlement_read(context, input, res):
    with connect(context.config) as session:
        _describe_grant_tables(session)
        res.send(find_entitlement(session, input["identity"]))


# -- provisioning ------------------------------------------------------------------------------------


def _provisioning(s: Settings) -> None:
    if not s.provisioning:
        raise ConnectorError(
            "provisioning is turned off for this source: set the config item 'provisioning' to true "
            "(the service account needs CREATE USER and GRANT OPTION on the governed databases)"
        )


def native_password_hash(password: str) -> str:
    """The ``mysql_native_password`` hash (``*`` + SHA1(SHA1(password)) in hex), as ``PASSWORD()`` computes."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode("utf-8")).digest()).hexdigest().upper()


def _identified(session: Session, password: str) -> tuple[str, list[str]]:
    if session.server.mariadb:
        return "IDENTIFIED BY PASSWORD %s", [native_password_hash(password)]
    return "IDENTIFIED BY %s", [password]


def _grant_sql(
    session: Session, identity: str, user: str, host: str, *, revoke: bool
) -> list[tuple[str, list]]:
    """The statement(s) granting or revoking one entitlement."""
    kind, name, privilege = parse_entitlement(identity)
    if kind == "role":
        role_user, role_host = _role_account(session, name)
        role = quote_identifier(role_user) if session.server.mariadb else "%s@%s"
        role_params = [] if session.server.mariadb else [role_user, role_host]
        verb = "REVOKE {} FROM %s@%s" if revoke else "GRANT {} TO %s@%s"
        return [(verb.format(role), [*role_params, user, host])]
    assert privilege is not None and KEYWORD.match(privilege)  # a keyword, never free text
    keyword = "ALL PRIVILEGES" if privilege == ALL else privilege
    if not revoke:
        return [(f"GRANT {keyword} ON {grant_database(name)}.* TO %s@%s", [user, host])]
    # Revoke on every Db form the grant tables hold for that database (escaped or not).
    rows = session.rows("SELECT Db FROM mysql.db WHERE User = %s AND Host = %s", (user, host))
    forms = [db for (db,) in rows if unescape_db(db)[0] == name] or [name]
    return [(f"REVOKE {keyword} ON {quote_identifier(db)}.* FROM %s@%s", [user, host]) for db in forms]


def expand(privileges: list[str], values: list[str]) -> dict[str, None]:
    """Entitlements with each ``database:<db>:ALL`` replaced by every privilege of the database."""
    out: dict[str, None] = {}
    for v in values:
        kind, name, privilege = parse_entitlement(v)
        if kind == "database" and privilege == ALL:
            out.update(dict.fromkeys(f"database:{name}:{p}" for p in privileges))
        else:
            out[v] = None
    return out


def plan(privileges: list[str], held: list[str], target: list[str]) -> tuple[list[str], list[str]]:
    """The entitlements to grant and to revoke to go from ``held`` to ``target``.

    ``database:<db>:ALL`` stands for every privilege of the database, so both sides are compared privilege
    by privilege: removing SELECT from an account holding ALL revokes SELECT only. A database whose every
    privilege is to be granted gets one ``GRANT ALL``; one left with none gets one ``REVOKE ALL``.
    """

    have, want = expand(privileges, held), expand(privileges, target)
    add = [v for v in want if v not in have]
    remove = [v for v in have if v not in want]

    def compress(values: list[str], complete: Any) -> list[str]:
        by_db: dict[str, list[str]] = {}
        out: list[str] = []
        for v in values:
            kind, name, _ = parse_entitlement(v)
            if kind == "database":
                by_db.setdefault(name, []).append(v)
            else:
                out.append(v)
        for db, items in by_db.items():
            out.extend([f"database:{db}:{ALL}"] if complete(db, items) else items)
        return out

    grant = compress(add, lambda db, items: all(f"database:{db}:{p}" in want for p in privileges))
    revoke = compress(remove, lambda db, items: not any(v.startswith(f"database:{db}:") for v in want))
    return grant, revoke


def _apply(session: Session, user: str, host: str, grant: list[str], revoke: list[str]) -> None:
    """GRANT and REVOKE; on failure, undo what was applied and raise a clear error."""
    databases = governed_databases(session)
    for identity in grant:
        find_entitlement(session, identity, databases)  # exists and is governed, else ObjectNotFound
    for identity in revoke:
        parse_entitlement(identity)
    done: list[tuple[str, bool]] = []
    try:
        for identity, is_revoke in [(i, True) for i in revoke] + [(i, False) for i in grant]:
            for statement, params in _grant_sql(session, identity, user, host, revoke=is_revoke):
                session.execute(statement, params)
            done.append((identity, is_revoke))
    except pymysql.Error as exc:
        for identity, was_revoke in reversed(done):
            with contextlib.suppress(pymysql.Error):
                for statement, params in _grant_sql(session, identity, user, host, revoke=not was_revoke):
                    session.execute(statement, params)
        failed = next(i for i in [*revoke, *grant] if (i, i in revoke) not in done)
        verb = "revoke" if failed in revoke else "grant"
        raise ConnectorError(
            _sql_message(exc, session.s, f"cannot {verb} {failed} for {account_id(user, host)}") + _hint(exc)
        ) from None


def _hint(exc: pymysql.Error) -> str:
    code = exc.args[0] if exc.args else None
    if code in (ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_SPECIFIC_ACCESS_DENIED, ER_ACCESS_DENIED):
        return (
            " (the service account needs the privilege WITH GRANT OPTION on the database, "
            "or the role WITH ADMIN OPTION)"
        )
    return ""


SETTABLE = frozenset({"password", "enabled", "maxUserConnections", "passwordExpired"})


def _check_attributes(attributes: dict[str, Any], *, creating: bool) -> None:
    allowed = SETTABLE | {GROUP_ATTRIBUTE} | ({"id", "user", "host"} if creating else set())
    unknown = sorted(set(attributes) - allowed)
    if unknown:
        raise InputError(
            f"attribute(s) {', '.join(map(repr, unknown))} cannot be set; settable: {', '.join(sorted(allowed))}"
        )


def _bool(attribute: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"attribute {attribute!r} must be true or false, got {value!r}")


def _alter(session: Session, user: str, host: str, attributes: dict[str, Any]) -> None:
    """``ALTER USER`` for password, lock, expiry and connection limit."""
    for attribute, value in attributes.items():
        if attribute == "password":
            if not isinstance(value, str) or not value:
                raise InputError("attribute 'password' must be a non-empty string")
            clause, params = _identified(session, value)
            try:
                session.execute(f"ALTER USER %s@%s {clause}", [user, host, *params])
            except pymysql.Error as exc:
                raise ConnectorError(
                    _sql_message(exc, session.s, f"cannot set the password of {user}@{host}", value)
                ) from None
        elif attribute == "enabled":
            lock = "UNLOCK" if _bool(attribute, value) else "LOCK"
            session.execute(f"ALTER USER %s@%s ACCOUNT {lock}", [user, host])
        elif attribute == "passwordExpired":
            if _bool(attribute, value):
                session.execute("ALTER USER %s@%s PASSWORD EXPIRE", [user, host])
        elif attribute == "maxUserConnections":
            if value in (None, ""):
                value = 0
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputError(f"attribute 'maxUserConnections' must be a whole number ≥ 0, got {value!r}")
            session.execute("ALTER USER %s@%s WITH MAX_USER_CONNECTIONS %s", [user, host, value])


def _guard_self(session: Session, user: str, host: str, action: str) -> None:
    current = session.rows("SELECT CURRENT_USER()")[0][0]
    if current == account_id(user, host):
        raise ConnectorError(
            f"refusing to {action} {current}: it is the service account this source connects as"
        )


def _in_scope(session: Session, user: str) -> None:
    pattern = session.s.user_pattern
    if pattern and not session.rows("SELECT %s REGEXP %s", (user, pattern))[0][0]:
        raise InputError(f"user name {user!r} is outside this source's scope (userNamePattern {pattern})")


@connector.command("std:account:create")
def account_create(context, input, res):
    attributes = dict(input.get("attributes") or {})
    identity = input.get("identity") or attributes.get("id")
    if not identity and attributes.get("user"):
        identity = account_id(attributes["user"], attributes.get("host") or "")
    if not isinstance(identity, str) or not identity:
        raise InputError("std:account:create needs an identity user@host (or 'user' and 'host' attributes)")
    _check_attributes(attributes, creating=True)
    for key in ("id", "user", "host"):
        attributes.pop(key, None)
    wanted = [str(v) for v in as_list(attributes.pop(GROUP_ATTRIBUTE, None))]
    for entitlement in wanted:
        parse_entitlement(entitlement)
    password = attributes.pop("password", None)
    if password is not None and (not isinstance(password, str) or not password):
        raise InputError("attribute 'password' must be a non-empty string")
    with connect(context.config) as session:
        s = session.s
        _provisioning(s)
        _describe_grant_tables(session)
        user, host = split_account(identity, s.default_host)
        if not user or len(user) > 128 or len(host) > 255:
            raise InputError(f"{identity!r} is not a valid account name user@host")
        _in_scope(session, user)
        if session.rows("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, host)):
            raise ConnectorError(
                f"cannot create {user}@{host}: an account or role with that name already exists"
            )
        statement, params = "CREATE USER %s@%s", [user, host]
        if password:
            clause, extra = _identified(session, password)
            statement, params = f"{statement} {clause}", params + extra
        try:
            session.execute(statement, params)
        except pymysql.Error as exc:
            raise ConnectorError(
                _sql_message(exc, s, f"cannot create {user}@{host}", password) + _hint(exc)
            ) from None
        try:
            _alter(session, user, host, attributes)
            _apply(session, user, host, list(dict.fromkeys(wanted)), [])
        except Exception:
            with contextlib.suppress(pymysql.Error):
                session.execute("DROP USER %s@%s", [user, host])
            raise
        account = read_account(session, account_id(user, host))
    res.send(account)


@connector.command("std:account:update")
def account_update(context, input, res):
    todo = changes(input)
    _check_attributes({c.attribute: None for c in todo}, creating=False)
    with connect(context.config) as session:
        s = session.s
        _provisioning(s)
        _describe_grant_tables(session)
        current = read_account(session, input["identity"])["attributes"]
        user, host = current["user"], current["host"]
        held = list(current[GROUP_ATTRIBUTE])
        privileges = session.server.db_privileges
        target = list(expand(privileges, held))
        scalars: dict[str, Any] = {}
        for change in todo:
            if change.attribute == GROUP_ATTRIBUTE:
                target = change.apply(target, list(expand(privileges, [str(v) for v in change.values])))
            elif change.op != "Set":
                raise InputError(f"attribute {change.attribute!r} is single-valued: use Set, not {change.op}")
            else:
                scalars[change.attribute] = change.value
        if "enabled" in scalars and not _bool("enabled", scalars["enabled"]):
            _guard_self(session, user, host, "disable")
        try:
            _alter(session, user, host, scalars)
        except pymysql.Error as exc:
            raise ConnectorError(_sql_message(exc, s, f"cannot update {user}@{host}") + _hint(exc)) from None
        grant, revoke = plan(privileges, held, target)
        _apply(session, user, host, grant, revoke)
        account = read_account(session, account_id(user, host))
    res.send(account)


def _lock(context, input, res, enabled: bool) -> None:
    with connect(context.config) as session:
        _provisioning(session.s)
        _describe_grant_tables(session)
        current = read_account(session, input["identity"])["attributes"]
        user, host = current["user"], current["host"]
        if not enabled:
            _guard_self(session, user, host, "disable")
        try:
            _alter(session, user, host, {"enabled": enabled})
        except pymysql.Error as exc:
            verb = "enable" if enabled else "disable"
            raise ConnectorError(
                _sql_message(exc, session.s, f"cannot {verb} {user}@{host}") + _hint(exc)
            ) from None
        res.send(read_account(session, account_id(user, host)))


@connector.command("std:account:enable")
def account_enable(context, input, res):
    _lock(context, input, res, True)


@connector.command("std:account:disable")
def account_disable(context, input, res):
    _lock(context, input, res, False)


@connector.command("std:account:delete")
def account_delete(context, input, res):
    with connect(context.config) as session:
        _provisioning(session.s)
        _describe_grant_tables(session)
        current = read_account(session, input["identity"])["attributes"]
        user, host = current["user"], current["host"]
        _guard_self(session, user, host, "drop")
        try:
            session.execute("DROP USER %s@%s", [user, host])  # also removes every grant the account holds
        except pymysql.Error as exc:
            raise ConnectorError(
                _sql_message(exc, session.s, f"cannot drop {user}@{host}") + _hint(exc)
            ) from None
    res.send({})
