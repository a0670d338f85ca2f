"""The PostgreSQL connector against a real server.

The main server is this machine's PostgreSQL on 127.0.0.1:5432 (user postgres, trust authentication). A
session fixture creates a throwaway service account, databases and roles named ``gov_test_<random>_…``, and
the connector is scoped to that prefix (``roleNamePattern`` / ``databaseNamePattern``), so other roles on
the server do not matter. Everything is dropped at the end, also after failures.

That server trusts every local connection, so a wrong password would be accepted there. The wrong-password
and TLS cases run against a second, private PostgreSQL instance started for the session with
``scram-sha-256`` authentication and TLS (a throwaway CA and server certificate for ``localhost``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from connectors.postgresql import connector as pg_module
from connectors.postgresql.connector import connector as postgresql
from connectors.sdk import Cancelled, ConfigError, ConnectorError, InputError, ObjectNotFound
from connectors.testing import (
    ConnectorAcceptanceSuite,
    assert_connection_errors,
    free_port,
    make_certificates,
)
from connectors.testing import connection_error as _connection_error

HOST, PORT = "127.0.0.1", 5432
ADMIN = {"host": HOST, "port": PORT, "user": "postgres", "dbname": "postgres", "connect_timeout": 5}
SVC_PASSWORD = "svc-" + secrets.token_hex(8)
PG_BIN = Path("/usr/lib/postgresql")


def admin(dbname: str = "postgres") -> psycopg.Connection:
    return psycopg.connect(**{**ADMIN, "dbname": dbname}, autocommit=True)


def q(conn: psycopg.Connection, query, params=None):
    return conn.execute(query, params).fetchall()


class Env:
    def __init__(self, prefix: str):
        self.p = prefix
        self.svc = prefix + "svc"
        self.weak = prefix + "weak"
        self.db = prefix + "db"
        self.db2 = prefix + "db2"
        self.readers = prefix + "readers"
        self.analysts = prefix + "analysts"
        self.alice = prefix + "alice"
        self.bob = prefix + "bob"
        self.disabled = prefix + "disabled"

    @property
    def config(self) -> dict:
        return {
            "host": HOST,
            "port": PORT,
            "database": "postgres",
            "username": self.svc,
            "password": SVC_PASSWORD,
            "sslmode": "disable",
            "connectTimeout": 5,
            "provisioning": True,
            "roleNamePattern": "^" + self.p,
            "databaseNamePattern": "^" + self.p,
            "disabledRole": self.disabled,
        }


def _drop_everything(prefix: str) -> None:
    with admin() as conn:
        for (db,) in q(conn, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)):
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db)))
        roles = [
            r for (r,) in q(conn, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)", (prefix,))
        ]
        for role in roles:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        for role in roles:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="session")
def env():
    try:
        admin().close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL at {HOST}:{PORT} as postgres: {exc}")
    e = Env(f"gov_test_{secrets.token_hex(4)}_")
    I = sql.Identifier  # noqa: E741, N806
    try:
        with admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                    I(e.svc), sql.Literal(SVC_PASSWORD)
                )
            )
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(I(e.weak), sql.Literal(SVC_PASSWORD))
            )
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(I(e.db), I(e.svc)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(I(e.db2)))
            # Without the PUBLIC grants, has_database_privilege() is true only through a real grant.
            conn.execute(sql.SQL("REVOKE CONNECT, TEMPORARY ON DATABASE {} FROM PUBLIC").format(I(e.db)))
            conn.execute(sql.SQL("COMMENT ON DATABASE {} IS 'Sales data'").format(I(e.db)))
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(I(e.readers)))
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(I(e.analysts)))
            conn.execute(sql.SQL("GRANT {} TO {}").format(I(e.readers), I(e.analysts)))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(I(e.db), I(e.readers)))
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(I(e.alice), I(e.analysts)))
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN CREATEDB VALID UNTIL '2030-01-01 00:00:00+00' CONNECTION LIMIT 5 "
                    "IN ROLE pg_read_all_stats"
                ).format(I(e.bob))
            )
            conn.execute(sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(I(e.db), I(e.bob)))
            conn.execute(sql.SQL("COMMENT ON ROLE {} IS 'Bob the builder'").format(I(e.bob)))
        yield e
    finally:
        _drop_everything(e.p)


def run(command: str, config: dict, input: dict | None = None):
    return postgresql.invoke(command, config, input)


def accounts(config: dict) -> dict[str, dict]:
    outputs, _ = run("std:account:list", config)
    return {o["identity"]: o for o in outputs}


def entitlements(config: dict) -> dict[str, dict]:
    outputs, _ = run("std:entitlement:list", config, {"type": "privilege"})
    return {o["identity"]: o for o in outputs}


def read(config: dict, name: str) -> dict:
    outputs, _ = run("std:account:read", config, {"identity": name})
    assert len(outputs) == 1
    return outputs[0]["attributes"]


# -- a private server with password authentication and TLS ----------------------------------------------


@pytest.fixture(scope="session")
def scram_server(env):
    """A throwaway PostgreSQL with scram-sha-256 authentication and TLS: ``(port, folder)``."""
    versions = sorted(PG_BIN.glob("*/bin/initdb")) if PG_BIN.is_dir() else []
    if not versions or not shutil.which("openssl"):
        pytest.skip("initdb or openssl not available for the password-authentication server")
    bindir = versions[-1].parent
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="gov-pg-scram-"))
    port = free_port()
    data = folder / "data"
    try:
        make_certificates(folder)  # for localhost only: 127.0.0.1 does not match
        (folder / "pw").write_text(SVC_PASSWORD + "\n")
        if as_postgres:
            shutil.chown(folder, "postgres", "postgres")
            for f in folder.iterdir():
                shutil.chown(f, "postgres", "postgres")
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "scram-sha-256",
             "--pwfile", str(folder / "pw"), "--no-sync"],
            check=True, capture_output=True,
        )  # fmt: skip
        options = (
            f"-p {port} -k {folder} -c listen_addresses=localhost -c ssl=on "
            f"-c ssl_cert_file={folder}/server.crt -c ssl_key_file={folder}/server.key"
        )
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"),
             "-w", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a password-authentication server: {exc}")
    try:
        yield port, folder
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def scram_config(port: int, **extra) -> dict:
    # The private server's only role is its superuser, postgres, whose password is SVC_PASSWORD.
    return {
        "host": HOST,
        "port": port,
        "username": "postgres",
        "password": SVC_PASSWORD,
        "connectTimeout": 5,
        **extra,
    }


# -- the acceptance suite ----------------------------------------------------------------------------


class TestPostgresqlAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return postgresql

    @pytest.fixture
    def good_config(self, env):
        return env.config

    @pytest.fixture
    def bad_configs(self, env, scram_server):
        port, _ = scram_server
        good = env.config
        return {
            "wrong port": {**good, "port": 5999},
            "wrong password": scram_config(port, password="not-the-password", sslmode="disable"),
            "unknown database": {**good, "database": env.p + "nowhere"},
            "unknown user": {**good, "username": env.p + "nobody"},
            "no CREATEROLE for provisioning": {**good, "username": env.weak},
            "TLS required, server without TLS": {**good, "sslmode": "require"},
        }

    @pytest.fixture
    def new_account(self, env):
        return {
            "identity": env.p + "acceptance",
            "attributes": {"password": "Acceptance-" + secrets.token_hex(4)},
        }


# -- connection ---------------------------------------------------------------------------------------


def connection_error(config: dict) -> str:
    return _connection_error(postgresql, config)


def test_connection_errors_are_clear(env):
    good = env.config
    assert_connection_errors(
        postgresql,
        good,
        {
            "wrong port": ({**good, "port": 5999}, "cannot connect to 127.0.0.1:5999: connection refused"),
            "unknown database": (
                {**good, "database": env.p + "nowhere"},
                f"cannot connect to 127.0.0.1:5432: database {env.p}nowhere does not exist",
            ),
            "unknown user": (
                {**good, "username": env.p + "nobody"},
                f"authentication failed for user {env.p}nobody at 127.0.0.1:5432: no such role",
            ),
            "unknown host": (
                {**good, "host": "no-such-host.invalid"},
                "cannot connect to no-such-host.invalid:5432: unknown host no-such-host.invalid",
            ),
            "TLS required, server without TLS": (
                {**good, "sslmode": "require"},
                "cannot connect to 127.0.0.1:5432: the server does not support TLS (sslmode require)",
            ),
        },
    )


def test_wrong_password_is_reported_without_the_password(scram_server):
    port, _ = scram_server
    wrong = "Wr0ng-" + secrets.token_hex(6)
    # The same server with the right password connects: the failure is the password.
    assert_connection_errors(
        postgresql,
        scram_config(port, sslmode="disable"),
        {
            "wrong password": (
                scram_config(port, password=wrong, sslmode="disable"),
                f"authentication failed for user postgres at 127.0.0.1:{port}: wrong password or no such role",
            )
        },
        secrets=[wrong],
    )


def test_missing_createrole_is_reported_only_when_provisioning(env):
    weak = {**env.config, "username": env.weak}
    assert connection_error(weak) == (
        f"the service account {env.weak} lacks CREATEROLE, needed for provisioning: "
        f"ALTER ROLE {env.weak} CREATEROLE, or turn provisioning off"
    )
    assert run("std:test-connection", {**weak, "provisioning": False})[0] == [{}]


def test_verified_tls(scram_server):
    port, folder = scram_server
    ca = (folder / "ca.crt").read_text()
    tls = {"connectionOption": "tls", "sslmode": "verify-full", "sslrootcert": ca}
    assert run("std:test-connection", scram_config(port, host="localhost", **tls))[0] == [{}]
    assert connection_error(scram_config(port, **tls)) == (
        f"cannot connect to 127.0.0.1:{port}: the server certificate does not match host name 127.0.0.1"
    )
    # verify-ca checks the CA only, so the IP address is fine.
    assert run("std:test-connection", scram_config(port, **{**tls, "sslmode": "verify-ca"}))[0] == [{}]
    other = (folder / "other-ca.crt").read_text()
    assert connection_error(scram_config(port, host="localhost", **{**tls, "sslrootcert": other})) == (
        f"cannot connect to localhost:{port}: the server certificate is not signed by the configured CA"
    )
    # No temporary certificate file is left behind.
    assert not [f for f in os.listdir(tempfile.gettempdir()) if f.startswith("pg-ca-")]


def test_config_is_checked(env):
    with pytest.raises(ConfigError, match="verify-full or verify-ca"):
        run(
            "std:test-connection",
            {**env.config, "connectionOption": "tls", "sslmode": "require", "sslrootcert": "x"},
        )
    with pytest.raises(ConfigError, match="sslrootcert"):
        run("std:test-connection", {**env.config, "connectionOption": "tls", "sslmode": "verify-full"})
    with pytest.raises(ConnectorError, match="invalid regular expression"):
        run("std:test-connection", {**env.config, "roleNamePattern": "(unclosed"})
    with pytest.raises(ConfigError, match="'port'"):
        run("std:test-connection", {**env.config, "port": 70000})


# -- listing ------------------------------------------------------------------------------------------


def test_accounts_are_the_login_roles(env):
    found = accounts(env.config)
    assert set(found) == {env.svc, env.weak, env.alice, env.bob}  # not the group roles, not pg_*
    alice = found[env.alice]["attributes"]
    assert alice["memberOf"] == [f"role:{env.analysts}"]  # direct grants only; readers comes by implication
    assert alice["enabled"] is True and alice["superuser"] is False and alice["connectionLimit"] is None
    bob = found[env.bob]["attributes"]
    assert bob["createdb"] is True and bob["createrole"] is False
    assert bob["validUntil"] == "2030-01-01T00:00:00Z"
    assert bob["connectionLimit"] == 5
    assert bob["description"] == "Bob the builder"
    assert bob["memberOf"] == [f"database:{env.db}:TEMPORARY"]
    assert bob["otherRoles"] == ["pg_read_all_stats"]
    svc = found[env.svc]["attributes"]
    assert svc["createrole"] is True
    # The owner of a database holds its privileges (the database's default ACL).
    assert svc["memberOf"] == [f"database:{env.db}:{p}" for p in ("CONNECT", "CREATE", "TEMPORARY")]


def test_entitlements_and_their_place_in_the_inventory(env):
    found = entitlements(env.config)
    expected_db = {f"database:{d}:{p}" for d in (env.db, env.db2) for p in ("CONNECT", "CREATE", "TEMPORARY")}
    assert set(found) == expected_db | {f"role:{env.readers}", f"role:{env.analysts}"}
    connect = found[f"database:{env.db}:CONNECT"]
    assert connect["attributes"]["owner"] == env.svc
    assert connect["attributes"]["public"] is False  # revoked from PUBLIC by the fixture
    assert connect["attributes"]["description"] == "Sales data"
    assert found[f"database:{env.db2}:CONNECT"]["attributes"]["public"] is True
    assert found[f"database:{env.db2}:CREATE"]["attributes"]["public"] is False
    m = postgresql.spec.map_entitlement(connect)
    assert (m.resource_id, m.resource_name, m.resource_kind) == (f"database:{env.db}", env.db, "database")
    assert (m.role_id, m.role_name) == ("CONNECT", "Connect")
    analysts = postgresql.spec.map_entitlement(found[f"role:{env.analysts}"])
    assert (analysts.resource_id, analysts.resource_kind, analysts.role_id) == (
        f"role:{env.analysts}",
        "group role",
        "member",
    )
    assert analysts.implies == [f"role:{env.readers}"]
    assert found[f"role:{env.readers}"]["attributes"]["implies"] == [f"database:{env.db}:CONNECT"]


def test_reads(env):
    assert read(env.config, env.bob)["createdb"] is True
    ent, _ = run("std:entitlement:read", env.config, {"identity": f"role:{env.readers}"})
    assert ent[0]["attributes"]["implies"] == [f"database:{env.db}:CONNECT"]
    ent, _ = run("std:entitlement:read", env.config, {"identity": f"database:{env.db}:CREATE"})
    assert ent[0]["attributes"]["privilege"] == "CREATE"
    with pytest.raises(ObjectNotFound, match="is a group role"):
        run("std:account:read", env.config, {"identity": env.readers})
    with pytest.raises(ObjectNotFound, match="outside this source's scope"):
        run("std:account:read", env.config, {"identity": "postgres"})
    with pytest.raises(ObjectNotFound, match="no role"):
        run("std:account:read", env.config, {"identity": env.p + "ghost"})
    with pytest.raises(ObjectNotFound, match="login role"):
        run("std:entitlement:read", env.config, {"identity": f"role:{env.alice}"})
    with pytest.raises(InputError, match="not an entitlement"):
        run("std:entitlement:read", env.config, {"identity": f"database:{env.db}:DELETE"})


def test_filters_exclude_exactly_the_matching_objects(env):
    config = {**env.config, "filterString": f'name.startsWith("{env.p}b")'}
    outputs, result = run("std:account:list", config)
    assert {o["identity"] for o in outputs} == {env.svc, env.weak, env.alice}
    assert result.filtered == 1
    config = {**env.config, "privilege.filterString": 'resourceKind == "database"'}
    outputs, result = run("std:entitlement:list", config, {"type": "privilege"})
    assert {o["identity"] for o in outputs} == {f"role:{env.readers}", f"role:{env.analysts}"}
    assert result.filtered == 6


def test_listing_streams_from_a_server_side_cursor(env, monkeypatch):
    """When the first account is handed over, the connector's session is fetching rows one by one."""
    monkeypatch.setattr(pg_module, "ITERSIZE", 1)
    seen: list[str] = []

    def emit(kind, data):
        if kind == "output" and not seen:
            with admin() as conn:
                rows = q(
                    conn,
                    "SELECT query FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()",
                    (pg_module.APPLICATION_NAME,),
                )
            seen.extend(r[0] for r in rows)

    postgresql.execute("std:account:list", env.config, emit=emit)
    assert any(s.startswith('FETCH FORWARD 1 FROM "governance_stream"') for s in seen), seen


# -- provisioning -------------------------------------------------------------------------------------


def holds(role: str, db: str, privilege: str) -> bool:
    with admin() as conn:
        return q(conn, "SELECT has_database_privilege(%s, %s, %s)", (role, db, privilege))[0][0]


def member(role: str, group: str) -> bool:
    with admin() as conn:
        return q(conn, "SELECT pg_has_role(%s, %s, 'MEMBER')", (role, group))[0][0]


def pg_role(name: str) -> dict | None:
    with admin() as conn:
        rows = conn.execute(
            "SELECT rolcanlogin, rolcreatedb, rolconnlimit, rolpassword FROM pg_authid WHERE rolname = %s",
            (name,),
        ).fetchall()
    return dict(zip(("login", "createdb", "connlimit", "password"), rows[0], strict=True)) if rows else None


def test_provisioning_lifecycle(env):
    cfg, name, password = env.config, env.p + "carol", "Carol-" + secrets.token_hex(6)
    analysts, connect, create = (
        f"role:{env.analysts}",
        f"database:{env.db}:CONNECT",
        f"database:{env.db}:CREATE",
    )
    created, _ = run(
        "std:account:create",
        cfg,
        {
            "identity": name,
            "attributes": {"password": password, "memberOf": [analysts, connect], "createdb": True},
        },
    )
    assert created[0]["identity"] == name
    assert created[0]["attributes"]["memberOf"] == [analysts, connect]
    row = pg_role(name)
    assert row["login"] and row["createdb"]
    assert row["password"].startswith("SCRAM-SHA-256$") and password not in row["password"]
    assert member(name, env.analysts) and member(name, env.readers)
    assert holds(name, env.db, "CONNECT") and not holds(name, env.db, "CREATE")

    change = [
        {"op": "Remove", "attribute": "memberOf", "value": analysts},
        {"op": "Add", "attribute": "memberOf", "value": [create]},
        {"op": "Set", "attribute": "connectionLimit", "value": 3},
        {"op": "Set", "attribute": "description", "value": "Carol's account"},
    ]
    updated, _ = run("std:account:update", cfg, {"identity": name, "changes": change})
    attrs = updated[0]["attributes"]
    assert attrs["memberOf"] == [connect, create]
    assert attrs["connectionLimit"] == 3 and attrs["description"] == "Carol's account"
    assert not member(name, env.analysts) and holds(name, env.db, "CREATE")
    assert read(cfg, name)["memberOf"] == [connect, create]

    run(
        "std:account:update",
        cfg,
        {"identity": name, "changes": [{"op": "Set", "attribute": "memberOf", "value": []}]},
    )
    assert read(cfg, name)["memberOf"] == []
    assert not holds(name, env.db, "CONNECT") and not holds(name, env.db, "CREATE")

    disabled, _ = run("std:account:disable", cfg, {"identity": name})
    assert disabled[0]["attributes"]["enabled"] is False
    assert pg_role(name)["login"] is False
    # A disabled account stays an account; it does not turn into a group role.
    assert accounts(cfg)[name]["attributes"]["enabled"] is False
    assert f"role:{name}" not in entitlements(cfg) and f"role:{env.disabled}" not in entitlements(cfg)
    assert disabled[0]["attributes"]["memberOf"] == [] and disabled[0]["attributes"]["otherRoles"] == []
    enabled, _ = run("std:account:enable", cfg, {"identity": name})
    assert enabled[0]["attributes"]["enabled"] is True and pg_role(name)["login"] is True
    assert not member(name, env.disabled)

    run("std:account:delete", cfg, {"identity": name})
    assert pg_role(name) is None
    with pytest.raises(ObjectNotFound):
        run("std:account:read", cfg, {"identity": name})


def test_identifiers_are_quoted(env):
    name = env.p + 'o\'brien "x"; DROP ROLE postgres; --'
    created, _ = run(
        "std:account:create",
        env.config,
        {"identity": name, "attributes": {"memberOf": f"role:{env.readers}"}},
    )
    assert created[0]["identity"] == name and member(name, env.readers)
    run("std:account:delete", env.config, {"identity": name})
    assert pg_role(name) is None and pg_role("postgres") is not None


def test_delete_of_a_role_owning_objects_is_refused_clearly(env):
    name = env.p + "owner"
    run(
        "std:account:create",
        env.config,
        {"identity": name, "attributes": {"memberOf": f"database:{env.db}:CONNECT"}},
    )
    with admin(env.db) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} ()").format(sql.Identifier(env.p + "t")))
        conn.execute(
            sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.Identifier(env.p + "t"), sql.Identifier(name))
        )
    with pytest.raises(ConnectorError) as caught:
        run("std:account:delete", env.config, {"identity": name})
    message = str(caught.value)
    assert message.startswith(f"cannot drop role {name}: it still owns objects or holds privileges (")
    assert f"REASSIGN OWNED BY {name}" in message and "\n" not in message
    # Nothing changed: the role and its grant are still there.
    assert read(env.config, name)["memberOf"] == [f"database:{env.db}:CONNECT"]


def test_failed_grant_changes_nothing(env):
    name = env.p + "dave"
    run("std:account:create", env.config, {"identity": name})
    foreign = f"database:{env.db2}:CREATE"  # db2 belongs to postgres: the service account cannot grant on it
    change = [{"op": "Add", "attribute": "memberOf", "value": [f"role:{env.readers}", foreign]}]
    with pytest.raises(ConnectorError, match=f"must own database {env.db2}"):
        run("std:account:update", env.config, {"identity": name, "changes": change})
    assert read(env.config, name)["memberOf"] == [] and not member(name, env.readers)
    with pytest.raises(ObjectNotFound, match="no entitlement"):
        run(
            "std:account:update",
            env.config,
            {"identity": name, "changes": [{"op": "Add", "attribute": "memberOf", "value": "role:postgres"}]},
        )
    with pytest.raises(InputError, match="cannot be set"):
        run(
            "std:account:update",
            env.config,
            {"identity": name, "changes": [{"op": "Set", "attribute": "name", "value": "x"}]},
        )
    run("std:account:delete", env.config, {"identity": name})


def test_provisioning_guards(env):
    with pytest.raises(ConnectorError, match="provisioning is turned off"):
        run("std:account:create", {**env.config, "provisioning": False}, {"identity": env.p + "erin"})
    assert pg_role(env.p + "erin") is None
    with pytest.raises(InputError, match="outside this source's scope"):
        run("std:account:create", env.config, {"identity": "not_governed_" + secrets.token_hex(3)})
    with pytest.raises(ConnectorError, match="already exists"):
        run("std:account:create", env.config, {"identity": env.alice})
    with pytest.raises(ConnectorError, match="service account"):
        run("std:account:delete", env.config, {"identity": env.svc})
    with pytest.raises(ConnectorError, match="service account"):
        run("std:account:disable", env.config, {"identity": env.svc})
    with pytest.raises(ObjectNotFound, match="group role"):
        run("std:account:delete", env.config, {"identity": env.readers})
    assert pg_role(env.readers) is not None


def test_cancelled_listing_stops_cleanly(env, monkeypatch):
    before = accounts(env.config)
    monkeypatch.setattr(pg_module, "ITERSIZE", 1)
    monkeypatch.setattr("connectors.sdk.connector.CANCEL_CHECK_EVERY", 1)
    sent: list[dict] = []

    def emit(kind, data):
        sent.append(data)

    with pytest.raises(Cancelled):
        postgresql.execute("std:account:list", env.config, emit=emit, should_cancel=lambda: True)
    assert len(sent) < len(before)
    # The connection is closed (the server ends the session shortly after) and listing works again at once.
    assert accounts(env.config) == before
    with admin() as conn:
        for _ in range(50):
            sessions = q(
                conn,
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                (pg_module.APPLICATION_NAME,),
            )
            if not sessions:
                break
            time.sleep(0.05)
    assert not sessions
