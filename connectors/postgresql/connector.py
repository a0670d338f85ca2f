"""The PostgreSQL connector: login roles, databases and group roles of a server (see ``README.md``).

* Accounts are login roles (and roles disabled by this connector), keyed by role name.
* Entitlements (type ``privilege``) are ``database:<db>:CONNECT|CREATE|TEMPORARY`` and ``role:<group role>``.
  An account's ``memberOf`` lists its *direct* grants: group roles it is a member of and entries of the
  databases' ACLs naming it. What a group role passes on to its members is in the group role's ``implies``.
* Reads stream from server-side cursors. Every statement is composed with ``psycopg.sql`` (identifiers
  with ``Identifier``, values with parameters or ``Literal``); passwords are sent as SCRAM verifiers
  computed here, so the clear text never reaches the server nor its logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import dict_row

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
DATABASE_PRIVILEGES = {"CONNECT": "Connect", "CREATE": "Create schemas", "TEMPORARY": "Temporary tables"}
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
VERIFYING_SSLMODES = ("verify-ca", "verify-full")
DEFAULT_DISABLED_ROLE = "governance_disabled"
MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL silently truncates longer names
ITERSIZE = 500  # rows fetched per round trip from a server-side cursor
APPLICATION_NAME = "access-governance-connector"

# Role flags settable on create/update: account attribute -> (keyword when true, keyword when false).
ROLE_FLAGS = {
    "superuser": ("SUPERUSER", "NOSUPERUSER"),
    "createdb": ("CREATEDB", "NOCREATEDB"),
    "createrole": ("CREATEROLE", "NOCREATEROLE"),
    "replication": ("REPLICATION", "NOREPLICATION"),
    "bypassRls": ("BYPASSRLS", "NOBYPASSRLS"),
    "inherit": ("INHERIT", "NOINHERIT"),
}


# -- settings and connections ------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    database: str
    username: str
    password: str | None
    sslmode: str
    sslrootcert: str | None
    connect_timeout: int
    provisioning: bool
    role_pattern: str | None
    database_pattern: str | None
    disabled_role: str

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def scope(self) -> dict[str, Any]:
        """Parameters of :data:`SCOPE`."""
        return {"rp": self.role_pattern, "dp": self.database_pattern, "dr": self.disabled_role}


def settings(config: dict[str, Any]) -> Settings:
    tls = config.get("connectionOption") == "tls"
    sslmode = _text(config, "sslmode") or ("verify-full" if tls else "prefer")
    if sslmode not in SSLMODES:
        raise ConfigError(
            f"config item 'sslmode' must be one of {', '.join(SSLMODES)}, got {sslmode!r}", item="sslmode"
        )
    if tls and sslmode not in VERIFYING_SSLMODES:
        raise ConfigError(
            f"config item 'sslmode': the verified TLS option needs verify-full or verify-ca, got {sslmode!r}",
            item="sslmode",
        )
    disabled_role = _text(config, "disabledRole") or DEFAULT_DISABLED_ROLE
    if disabled_role.startswith("pg_"):
        raise ConfigError(
            "config item 'disabledRole': names starting with pg_ are reserved", item="disabledRole"
        )
    provisioning = config.get("provisioning", False)
    return Settings(
        host=_text(config, "host") or "",
        port=_int(config, "port", 5432, 1, 65535),
        database=_text(config, "database") or "postgres",
        username=_text(config, "username") or "",
        password=config.get("password") or None,
        sslmode=sslmode,
        sslrootcert=_text(config, "sslrootcert"),
        connect_timeout=_int(config, "connectTimeout", 10, 1, 3600),
        provisioning=provisioning is True or str(provisioning).lower() == "true",
        role_pattern=_text(config, "roleNamePattern"),
        database_pattern=_text(config, "databaseNamePattern"),
        disabled_role=disabled_role,
    )


def _server_detail(text: str) -> str:
    """libpq's message without its 'connection to server ... failed:' prefix and severity."""
    text = one_line(text)
    for marker in (" failed: FATAL: ", " failed: ERROR: ", " failed: "):
        if marker in text:
            text = text.split(marker, 1)[1]
            break
    return text.removeprefix("connection failed: ").removeprefix("FATAL: ")


def _connect_message(s: Settings, exc: Exception) -> str:
    raw = one_line(str(exc), s.password)
    low = raw.lower()
    user, where = s.username, s.where
    if "password authentication failed" in low:
        return f"authentication failed for user {user} at {where}: wrong password or no such role"
    if "no password supplied" in low or "fe_sendauth" in low:
        return (
            f"authentication failed for user {user} at {where}: the server asks for a password, none is set"
        )
    if "is not permitted to log in" in low:
        return (
            f"authentication failed for user {user} at {where}: the role is not permitted to log in (NOLOGIN)"
        )
    if 'role "' in low and "does not exist" in low:
        return f"authentication failed for user {user} at {where}: no such role"
    if "no pg_hba.conf entry" in low:
        tls = " without TLS (try sslmode require)" if "no encryption" in low else ""
        return (
            f"cannot connect to {where}: the server refuses user {user} on database {s.database} "
            f"from this host{tls} (no pg_hba.conf entry)"
        )
    if "database" in low and "does not exist" in low:
        return f"cannot connect to {where}: database {s.database} does not exist"
    if "connection refused" in low:
        return f"cannot connect to {where}: connection refused"
    if "failed to resolve host" in low or "could not translate host name" in low:
        return f"cannot connect to {where}: unknown host {s.host}"
    if "timeout expired" in low or "timed out" in low:
        return f"cannot connect to {where}: no answer within {s.connect_timeout} s"
    if "server does not support ssl" in low:
        return f"cannot connect to {where}: the server does not support TLS (sslmode {s.sslmode})"
    if "root certificate file" in low:
        return f"cannot connect to {where}: sslmode {s.sslmode} needs the CA certificate (sslrootcert)"
    if "does not match host name" in low:
        return f"cannot connect to {where}: the server certificate does not match host name {s.host}"
    if "certificate verify failed" in low:
        return f"cannot connect to {where}: the server certificate is not signed by the configured CA"
    if "too many" in low and "connections" in low:
        return f"cannot connect to {where}: too many connections ({_server_detail(raw)})"
    return f"cannot connect to {where}: {_server_detail(raw)}"


@contextlib.contextmanager
def connect(config: dict[str, Any]) -> Iterator[tuple[psycopg.Connection, Settings]]:
    """An autocommit connection (work is done in explicit transactions) and the parsed settings."""
    s = settings(config)
    params: dict[str, Any] = {
        "host": s.host,
        "port": s.port,
        "dbname": s.database,
        "user": s.username,
        "sslmode": s.sslmode,
        "connect_timeout": s.connect_timeout,
        "application_name": APPLICATION_NAME,
        "autocommit": True,
    }
    if s.password:
        params["password"] = s.password
    with pem_file(s.sslrootcert, item="sslrootcert") as root:
        if root:
            params["sslrootcert"] = root
        try:
            conn = psycopg.connect(**params)
        except psycopg.Error as exc:
            raise ConnectorError(_connect_message(s, exc)) from None
    try:
        yield conn, s
    except psycopg.Error as exc:
        raise ConnectorError(_pg_message(exc, s)) from None
    finally:
        conn.close()


def _pg_message(exc: psycopg.Error, s: Settings, action: str = "") -> str:
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None and diag.message_primary else None) or str(exc)
    if isinstance(exc, pg_errors.InvalidRegularExpression):
        return f"invalid regular expression in roleNamePattern or databaseNamePattern: {one_line(text, s.password)}"
    prefix = f"{action}: " if action else ""
    return prefix + one_line(text, s.password)


# -- queries -----------------------------------------------------------------------------------------

# The governed objects, shared by every query. Parameters: rp (role name pattern or NULL), dp (database
# name pattern or NULL), dr (the role marking disabled accounts).
SCOPE = """
WITH scope AS (SELECT %(rp)s::text AS rp, %(dp)s::text AS dp, %(dr)s::text AS dr),
marked AS (
  SELECT m.member AS oid FROM pg_auth_members m
  JOIN pg_roles g ON g.oid = m.roleid JOIN scope ON g.rolname = scope.dr
),
governed AS (
  SELECT r.* FROM pg_roles r, scope
  WHERE r.rolname !~ '^pg_' AND r.rolname <> scope.dr AND (scope.rp IS NULL OR r.rolname ~ scope.rp)
),
acct AS (SELECT * FROM governed WHERE rolcanlogin OR oid IN (SELECT oid FROM marked)),
grp AS (SELECT * FROM governed WHERE NOT rolcanlogin AND oid NOT IN (SELECT oid FROM marked)),
db AS (
  SELECT d.oid, d.datname, d.datdba, coalesce(d.datacl, acldefault('d', d.datdba)) AS acl
  FROM pg_database d, scope
  WHERE NOT d.datistemplate AND (scope.dp IS NULL OR d.datname ~ scope.dp)
)
"""

ACCOUNTS = (
    SCOPE
    + """
SELECT r.rolname AS name, r.rolcanlogin AS enabled, r.rolsuper AS superuser, r.rolcreatedb AS createdb,
  r.rolcreaterole AS createrole, r.rolreplication AS replication, r.rolbypassrls AS bypass_rls,
  r.rolinherit AS inherit,
  CASE WHEN isfinite(r.rolvaliduntil)
    THEN to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') END AS valid_until,
  r.rolconnlimit AS connection_limit,
  shobj_description(r.oid, 'pg_authid') AS description,
  ARRAY(
    SELECT 'role:' || g.rolname FROM pg_auth_members m JOIN grp g ON g.oid = m.roleid
    WHERE m.member = r.oid ORDER BY g.rolname
  ) AS groups,
  ARRAY(
    SELECT DISTINCT 'database:' || db.datname || ':' || a.privilege_type
    FROM db CROSS JOIN LATERAL aclexplode(db.acl) a WHERE a.grantee = r.oid ORDER BY 1
  ) AS privileges,
  ARRAY(
    SELECT o.rolname FROM pg_auth_members m JOIN pg_roles o ON o.oid = m.roleid, scope
    WHERE m.member = r.oid AND o.rolname <> scope.dr AND o.oid NOT IN (SELECT oid FROM grp) ORDER BY o.rolname
  ) AS other_roles
FROM acct r
WHERE %(name)s::text IS NULL OR r.rolname = %(name)s
ORDER BY r.rolname
"""
)

DATABASE_ENTITLEMENTS = (
    SCOPE
    + """
SELECT db.datname, pg_get_userbyid(db.datdba) AS owner,
  shobj_description(db.oid, 'pg_database') AS description,
  p.privilege,
  EXISTS (SELECT 1 FROM aclexplode(db.acl) a WHERE a.grantee = 0 AND a.privilege_type = p.privilege) AS public
FROM db CROSS JOIN (VALUES ('CONNECT'), ('CREATE'), ('TEMPORARY')) AS p(privilege)
WHERE %(name)s::text IS NULL OR db.datname = %(name)s
ORDER BY db.datname, p.privilege
"""
)

ROLE_ENTITLEMENTS = (
    SCOPE
    + """
SELECT g.rolname, shobj_description(g.oid, 'pg_authid') AS description,
  ARRAY(
    SELECT 'role:' || p.rolname FROM pg_auth_members m JOIN grp p ON p.oid = m.roleid
    WHERE m.member = g.oid ORDER BY p.rolname
  ) || ARRAY(
    SELECT DISTINCT 'database:' || db.datname || ':' || a.privilege_type
    FROM db CROSS JOIN LATERAL aclexplode(db.acl) a WHERE a.grantee = g.oid ORDER BY 1
  ) AS implies
FROM grp g
WHERE %(name)s::text IS NULL OR g.rolname = %(name)s
ORDER BY g.rolname
"""
)

ROLE_LOOKUP = (
    SCOPE
    + """
SELECT r.rolname, r.rolcanlogin, r.rolname ~ '^pg_' AS builtin,
  r.oid IN (SELECT oid FROM acct) AS account, r.oid IN (SELECT oid FROM grp) AS group_role
FROM pg_roles r WHERE r.rolname = %(name)s
"""
)


def _stream(conn: psycopg.Connection, query: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows of ``query`` from a server-side cursor, ``ITERSIZE`` at a time. Close it when stopping early."""
    with conn.transaction(), conn.cursor(name="governance_stream", row_factory=dict_row) as cur:
        cur.itersize = ITERSIZE
        cur.execute(query, params)
        yield from cur


def _rows(conn: psycopg.Connection, query: str, params: Any) -> list[dict[str, Any]]:
    """The few rows of a lookup by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, params).fetchall()


# -- objects -----------------------------------------------------------------------------------------


def _obj(identity: str, attributes: dict[str, Any], ent_type: str | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "identity": identity,
        "key": {"simple": {"id": identity}},
        "attributes": attributes,
    }
    if ent_type is not None:
        obj["type"] = ent_type
    return obj


def _account(row: dict[str, Any]) -> dict[str, Any]:
    limit = row["connection_limit"]
    return _obj(
        row["name"],
        {
            "name": row["name"],
            "enabled": row["enabled"],
            "superuser": row["superuser"],
            "createdb": row["createdb"],
            "createrole": row["createrole"],
            "replication": row["replication"],
            "bypassRls": row["bypass_rls"],
            "inherit": row["inherit"],
            "validUntil": row["valid_until"],
            "connectionLimit": None if limit is None or limit < 0 else limit,
            "description": row["description"],
            GROUP_ATTRIBUTE: list(row["groups"]) + list(row["privileges"]),
            "otherRoles": list(row["other_roles"]),
        },
    )


def database_entitlement(row: dict[str, Any]) -> dict[str, Any]:
    db, privilege = row["datname"], row["privilege"]
    identity = f"database:{db}:{privilege}"
    return _obj(
        identity,
        {
            "id": identity,
            "name": f"{privilege} on database {db}",
            "resource": f"database:{db}",
            "resourceName": db,
            "resourceKind": "database",
            "privilege": privilege,
            "privilegeName": DATABASE_PRIVILEGES[privilege],
            "owner": row["owner"],
            "public": row["public"],
            "description": row["description"],
            "implies": [],
        },
        ENTITLEMENT_TYPE,
    )


def role_entitlement(row: dict[str, Any]) -> dict[str, Any]:
    name = row["rolname"]
    identity = f"role:{name}"
    return _obj(
        identity,
        {
            "id": identity,
            "name": f"Member of group role {name}",
            "resource": identity,
            "resourceName": name,
            "resourceKind": "group role",
            "privilege": "member",
            "privilegeName": "Member",
            "owner": None,
            "public": False,
            "description": row["description"],
            "implies": list(row["implies"]),
        },
        ENTITLEMENT_TYPE,
    )


def parse_entitlement(identity: Any) -> tuple[str, str, str | None]:
    """``("role", name, None)`` or ``("database", db, privilege)``. Raises :class:`InputError`."""
    if isinstance(identity, str):
        if identity.startswith("role:") and len(identity) > len("role:"):
            return "role", identity[len("role:") :], None
        if identity.startswith("database:"):
            db, _, privilege = identity[len("database:") :].rpartition(":")
            if db and privilege in DATABASE_PRIVILEGES:
                return "database", db, privilege
    raise InputError(
        f"{identity!r} is not an entitlement of this connector "
        "(expected role:<group role> or database:<database>:CONNECT|CREATE|TEMPORARY)"
    )


def _find_entitlement(conn: psycopg.Connection, s: Settings, identity: str) -> dict[str, Any]:
    kind, name, privilege = parse_entitlement(identity)
    params = {**s.scope, "name": name}
    if kind == "role":
        rows = _rows(conn, ROLE_ENTITLEMENTS, params)
        if rows:
            return role_entitlement(rows[0])
        raise ObjectNotFound(f"no entitlement {identity!r}: {_role_problem(conn, s, name, want='group')}")
    rows = [r for r in _rows(conn, DATABASE_ENTITLEMENTS, params) if r["privilege"] == privilege]
    if rows:
        return database_entitlement(rows[0])
    raise ObjectNotFound(f"no entitlement {identity!r}: no database {name!r} in this source's scope")


def _role_problem(conn: psycopg.Connection, s: Settings, name: str, *, want: str) -> str:
    """Why role ``name`` is not a governed account (``want="account"``) or group role (``"group"``)."""
    rows = _rows(conn, ROLE_LOOKUP, {**s.scope, "name": name})
    if not rows:
        return f"no role {name!r} on the server"
    row = rows[0]
    if row["builtin"]:
        return f"{name!r} is a built-in PostgreSQL role, not governed"
    if name == s.disabled_role:
        return f"{name!r} is the role marking disabled accounts, not governed"
    if not row["account"] and not row["group_role"]:
        return f"role {name!r} is outside this source's scope (roleNamePattern)"
    if want == "account":
        return f"role {name!r} is a group role (NOLOGIN), not an account"
    return f"role {name!r} is a login role (an account), not a group role"


def _read_account(conn: psycopg.Connection, s: Settings, name: str) -> dict[str, Any]:
    rows = _rows(conn, ACCOUNTS, {**s.scope, "name": name})
    if not rows:
        raise ObjectNotFound(f"no account {name!r}: {_role_problem(conn, s, name, want='account')}")
    return _account(rows[0])


# -- handlers: reading -------------------------------------------------------------------------------


@connector.command("std:test-connection")
def test_connection(context, input, res):
    with connect(context.config) as (conn, s):
        try:
            conn.execute("SELECT '' ~ %s, '' ~ %s", (s.role_pattern or "", s.database_pattern or ""))
        except pg_errors.InvalidRegularExpression as exc:
            raise ConfigError(_pg_message(exc, s), item="roleNamePattern") from None
        row = _rows(
            conn,
            """
            SELECT r.rolsuper AS superuser, r.rolcreaterole AS createrole,
              has_table_privilege('pg_catalog.pg_roles', 'SELECT') AS roles,
              has_table_privilege('pg_catalog.pg_database', 'SELECT') AS databases,
              has_table_privilege('pg_catalog.pg_auth_members', 'SELECT') AS members,
              (SELECT rolcanlogin FROM pg_roles WHERE rolname = %(dr)s) AS marker_login
            FROM pg_roles r WHERE r.rolname = current_user
            """,
            {"dr": s.disabled_role},
        )[0]
        unreadable = [
            t for t, ok in (("pg_roles", row["roles"]), ("pg_database", row["databases"])) if not ok
        ]
        if not row["members"]:
            unreadable.append("pg_auth_members")
        if unreadable:
            raise ConnectorError(
                f"the service account {s.username} cannot read {', '.join(unreadable)}: "
                f"GRANT SELECT ON {', '.join('pg_catalog.' + t for t in unreadable)} TO {s.username}"
            )
        if s.provisioning and not (row["superuser"] or row["createrole"]):
            raise ConnectorError(
                f"the service account {s.username} lacks CREATEROLE, needed for provisioning: "
                f"ALTER ROLE {s.username} CREATEROLE, or turn provisioning off"
            )
        if row["marker_login"]:
            raise ConnectorError(
                f"the role marking disabled accounts ({s.disabled_role}) is a login role; "
                "choose another name for the config item 'disabledRole'"
            )
    res.send({})


@connector.command("std:account:list")
def account_list(context, input, res):
    with connect(context.config) as (conn, s):
        with contextlib.closing(_stream(conn, ACCOUNTS, {**s.scope, "name": None})) as rows:
            for row in rows:
                res.send(_account(row))


@connector.command("std:account:read")
def account_read(context, input, res):
    with connect(context.config) as (conn, s):
        res.send(_read_account(conn, s, input["identity"]))


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    with connect(context.config) as (conn, s):
        params = {**s.scope, "name": None}
        with contextlib.closing(_stream(conn, DATABASE_ENTITLEMENTS, params)) as rows:
            for row in rows:
                res.send(database_entitlement(row))
        with contextlib.closing(_stream(conn, ROLE_ENTITLEMENTS, params)) as rows:
            for row in rows:
                res.send(role_entitlement(row))


@connector.command("std:entitlement:read")
def entitlement_read(context, input, res):
    with connect(context.config) as (conn, s):
        res.send(_find_entitlement(conn, s, input["identity"]))


# -- provisioning ------------------------------------------------------------------------------------


def _provisioning(s: Settings) -> None:
    if not s.provisioning:
        raise ConnectorError(
            "provisioning is turned off for this source: set the config item 'provisioning' to true "
            "(the service account needs CREATEROLE)"
        )


def _bool(attribute: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InputError(f"attribute {attribute!r} must be true or false, got {value!r}")


def _role_options(conn: psycopg.Connection, name: str, attributes: dict[str, Any]) -> list[sql.Composable]:
    """``CREATE/ALTER ROLE`` options for the given account attributes (those that are role options)."""
    options: list[sql.Composable] = []
    for attribute, value in attributes.items():
        if attribute in ROLE_FLAGS:
            yes, no = ROLE_FLAGS[attribute]
            options.append(sql.SQL(yes if _bool(attribute, value) else no))
        elif attribute == "enabled":
            options.append(sql.SQL("LOGIN" if _bool(attribute, value) else "NOLOGIN"))
        elif attribute == "validUntil":
            if value is not None and not isinstance(value, str):
                raise InputError(f"attribute 'validUntil' must be a date and time (ISO 8601), got {value!r}")
            options.append(sql.SQL("VALID UNTIL {}").format(sql.Literal(value or "infinity")))
        elif attribute == "connectionLimit":
            if value is None or value == "":
                value = -1
            if isinstance(value, str) and value.lstrip("-").isdigit():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or value < -1:
                raise InputError(f"attribute 'connectionLimit' must be a whole number ≥ 0, got {value!r}")
            options.append(sql.SQL("CONNECTION LIMIT {}").format(sql.Literal(value)))
        elif attribute == "password":
            if value is None or value == "":
                options.append(sql.SQL("PASSWORD NULL"))
            elif not isinstance(value, str):
                raise InputError("attribute 'password' must be a string")
            else:
                # A verifier (SCRAM, per the server's password_encryption): the clear text stays here.
                verifier = conn.pgconn.encrypt_password(value.encode(), name.encode())
                options.append(sql.SQL("PASSWORD {}").format(sql.Literal(verifier.decode("ascii"))))
    return options


SETTABLE = frozenset(ROLE_FLAGS) | {"enabled", "validUntil", "connectionLimit", "password", "description"}


def _check_attributes(attributes: dict[str, Any], *, creating: bool) -> None:
    allowed = SETTABLE | {GROUP_ATTRIBUTE} | ({"name"} if creating else set())
    unknown = sorted(set(attributes) - allowed)
    if unknown:
        raise InputError(
            f"attribute(s) {', '.join(map(repr, unknown))} cannot be set; "
            f"settable: {', '.join(sorted(allowed))}"
        )


def _grant(entitlement: str, role: str, *, revoke: bool = False) -> sql.Composed:
    kind, name, privilege = parse_entitlement(entitlement)
    if kind == "role":
        template = "REVOKE {} FROM {}" if revoke else "GRANT {} TO {}"
        return sql.SQL(template).format(sql.Identifier(name), sql.Identifier(role))
    assert privilege in DATABASE_PRIVILEGES  # a keyword from the fixed list, never input text
    template = "REVOKE {} ON DATABASE {} FROM {}" if revoke else "GRANT {} ON DATABASE {} TO {}"
    return sql.SQL(template).format(sql.SQL(privilege), sql.Identifier(name), sql.Identifier(role))


def _apply_entitlements(
    conn: psycopg.Connection, s: Settings, account: str, grant: list[str], revoke: list[str]
) -> None:
    """GRANT and REVOKE, then check the result: PostgreSQL only warns when a GRANT has no effect."""
    for identity in grant:
        _find_entitlement(conn, s, identity)  # exists and is governed, else ObjectNotFound
        conn.execute(_grant(identity, account))
    for identity in revoke:
        parse_entitlement(identity)
        conn.execute(_grant(identity, account, revoke=True))
    held = set(_read_account(conn, s, account)["attributes"][GROUP_ATTRIBUTE])
    missing = [i for i in grant if i not in held]
    kept = [i for i in revoke if i in held]
    for identity, verb in [(i, "GRANT") for i in missing] + [(i, "REVOKE") for i in kept]:
        kind, name, privilege = parse_entitlement(identity)
        if kind == "database":
            raise ConnectorError(
                f"{verb} {privilege} ON DATABASE {name} for {account} had no effect: the service account "
                f"{s.username} must own database {name} or hold {privilege} on it WITH GRANT OPTION"
            )
        raise ConnectorError(f"{verb} of role {name} for {account} had no effect")


def _comment(conn: psycopg.Connection, name: str, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InputError(f"attribute 'description' must be a string, got {value!r}")
    conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(sql.Identifier(name), sql.Literal(value or None)))


def _guard_self(s: Settings, name: str, action: str) -> None:
    if name == s.username:
        raise ConnectorError(
            f"refusing to {action} {name}: it is the service account this source connects as"
        )


@contextlib.contextmanager
def _provisioning_errors(s: Settings, action: str) -> Iterator[None]:
    try:
        yield
    except pg_errors.InsufficientPrivilege as exc:
        raise ConnectorError(_pg_message(exc, s, f"{action}: permission denied")) from None
    except pg_errors.DataError as exc:
        raise InputError(_pg_message(exc, s, action)) from None
    except psycopg.Error as exc:
        raise ConnectorError(_pg_message(exc, s, action)) from None


@connector.command("std:account:create")
def account_create(context, input, res):
    attributes = dict(input.get("attributes") or {})
    name = input.get("identity") or attributes.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("std:account:create needs an identity or a 'name' attribute (the role name)")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise InputError(f"role name {name!r} is longer than {MAX_NAME_BYTES} bytes")
    if name.startswith("pg_"):
        raise InputError(f"role name {name!r}: names starting with pg_ are reserved by PostgreSQL")
    _check_attributes(attributes, creating=True)
    attributes.pop("name", None)
    wanted = [str(v) for v in as_list(attributes.pop(GROUP_ATTRIBUTE, None))]
    for identity in wanted:
        parse_entitlement(identity)
    description = attributes.pop("description", None)
    enabled = attributes.pop("enabled", True)
    with connect(context.config) as (conn, s):
        _provisioning(s)
        if s.role_pattern and not _rows(conn, "SELECT 1 WHERE %s ~ %s", (name, s.role_pattern)):
            raise InputError(
                f"role name {name!r} is outside this source's scope (roleNamePattern {s.role_pattern})"
            )
        action = f"cannot create role {name}"
        with _provisioning_errors(s, action), conn.transaction():
            if _rows(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)):
                raise ConnectorError(f"{action}: a role with that name already exists")
            options = [sql.SQL("LOGIN"), *_role_options(conn, name, attributes)]
            conn.execute(
                sql.SQL("CREATE ROLE {} {}").format(sql.Identifier(name), sql.SQL(" ").join(options))
            )
            if description:
                _comment(conn, name, description)
            _apply_entitlements(conn, s, name, list(dict.fromkeys(wanted)), [])
            if not _bool("enabled", enabled):
                _set_enabled(conn, s, name, False)
            account = _read_account(conn, s, name)
    res.send(account)


@connector.command("std:account:update")
def account_update(context, input, res):
    todo = changes(input)
    name = input["identity"]
    _check_attributes({c.attribute: None for c in todo}, creating=False)
    with connect(context.config) as (conn, s):
        _provisioning(s)
        with _provisioning_errors(s, f"cannot update role {name}"), conn.transaction():
            current = _read_account(conn, s, name)["attributes"]
            held = list(current[GROUP_ATTRIBUTE])
            target = list(held)
            scalars: dict[str, Any] = {}
            for change in todo:
                if change.attribute == GROUP_ATTRIBUTE:
                    values = [str(v) for v in change.values]
                    for v in values:
                        parse_entitlement(v)
                    target = change.apply(target, values)
                elif change.op != "Set":
                    raise InputError(
                        f"attribute {change.attribute!r} is single-valued: use Set, not {change.op}"
                    )
                else:
                    scalars[change.attribute] = change.value
            if "enabled" in scalars:
                enabled = _bool("enabled", scalars.pop("enabled"))
                if not enabled:
                    _guard_self(s, name, "disable")
                _set_enabled(conn, s, name, enabled)
            if "description" in scalars:
                _comment(conn, name, scalars.pop("description"))
            options = _role_options(conn, name, scalars)
            if options:
                conn.execute(
                    sql.SQL("ALTER ROLE {} {}").format(sql.Identifier(name), sql.SQL(" ").join(options))
                )
            grant = [v for v in target if v not in held]
            revoke = [v for v in held if v not in target]
            _apply_entitlements(conn, s, name, grant, revoke)
            account = _read_account(conn, s, name)
    res.send(account)


def _set_enabled(conn: psycopg.Connection, s: Settings, name: str, enabled: bool) -> None:
    """LOGIN/NOLOGIN. A disabled account is also made a member of the marker role, so it stays an account."""
    marker = sql.Identifier(s.disabled_role)
    role = sql.Identifier(name)
    exists = bool(_rows(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (s.disabled_role,)))
    if enabled:
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN").format(role))
        if exists:
            conn.execute(sql.SQL("REVOKE {} FROM {}").format(marker, role))
        return
    if not exists:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(marker))
        conn.execute(
            sql.SQL("COMMENT ON ROLE {} IS {}").format(
                marker, sql.Literal("Members are login roles disabled by access governance (NOLOGIN).")
            )
        )
    conn.execute(sql.SQL("GRANT {} TO {}").format(marker, role))
    conn.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(role))


def _enable_or_disable(context, input, res, enabled: bool) -> None:
    name = input["identity"]
    verb = "enable" if enabled else "disable"
    with connect(context.config) as (conn, s):
        _provisioning(s)
        if not enabled:
            _guard_self(s, name, verb)
        with _provisioning_errors(s, f"cannot {verb} role {name}"), conn.transaction():
            _read_account(conn, s, name)
            _set_enabled(conn, s, name, enabled)
            account = _read_account(conn, s, name)
    res.send(account)


@connector.command("std:account:enable")
def account_enable(context, input, res):
    _enable_or_disable(context, input, res, True)


@connector.command("std:account:disable")
def account_disable(context, input, res):
    _enable_or_disable(context, input, res, False)


@connector.command("std:account:delete")
def account_delete(context, input, res):
    name = input["identity"]
    with connect(context.config) as (conn, s):
        _provisioning(s)
        _guard_self(s, name, "drop")
        action = f"cannot drop role {name}"
        try:
            with conn.transaction():
                held = _read_account(conn, s, name)["attributes"][GROUP_ATTRIBUTE]
                # Database privileges would block DROP ROLE: revoke the governed ones first.
                for identity in held:
                    if identity.startswith("database:"):
                        conn.execute(_grant(identity, name, revoke=True))
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))
        except pg_errors.DependentObjectsStillExist as exc:
            detail = one_line(exc.diag.message_detail or "", s.password)
            if len(detail) > 200:
                detail = detail[:200] + "…"
            raise ConnectorError(
                f"{action}: it still owns objects or holds privileges ({detail}); "
                f"move them with REASSIGN OWNED BY {name} and DROP OWNED BY {name} in each database first"
            ) from None
        except pg_errors.InsufficientPrivilege as exc:
            raise ConnectorError(_pg_message(exc, s, f"{action}: permission denied")) from None
        except psycopg.Error as exc:
            raise ConnectorError(_pg_message(exc, s, action)) from None
    res.send({})
