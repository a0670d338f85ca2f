"""The MySQL / MariaDB connector against this machine's MariaDB (127.0.0.1:3306, root without password).

A session fixture creates a service account with a password, a weaker account, throwaway databases, roles
and accounts named ``gov_t_<random>_…``; the connector is scoped to that prefix (``userNamePattern`` /
``databaseNamePattern``), so whatever else the server holds does not matter. Everything under the prefix is
dropped at the end, also after failures. A server that cannot be reached fails the tests (no skip).
"""

from __future__ import annotations

import secrets

import pymysql
import pytest

from connectors.mysql import connector as my_module
from connectors.mysql.connector import connector as mysql
from connectors.sdk import Cancelled, ConfigError, ConnectorError, InputError, ObjectNotFound
from connectors.testing import ConnectorAcceptanceSuite, assert_connection_errors, free_port
from connectors.testing import connection_error as _connection_error

HOST, PORT = "127.0.0.1", 3306
SVC_PASSWORD = "Svc-" + secrets.token_hex(8)


def admin() -> pymysql.connections.Connection:
    return pymysql.connect(host=HOST, port=PORT, user="root", password="", autocommit=True, connect_timeout=5)


def q(query: str, params=None) -> list[tuple]:
    with admin() as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return list(cur.fetchall())


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class Env:
    def __init__(self, prefix: str):
        self.p = prefix
        self.svc = prefix + "svc"
        self.weak = prefix + "weak"
        self.blind = prefix + "blind"
        self.db = prefix + "db"
        self.db2 = prefix + "db2"
        self.readers = prefix + "readers"
        self.analysts = prefix + "analysts"
        self.alice = prefix + "alice"
        self.bob = prefix + "bob"

    def config(self, **extra) -> dict:
        return {
            "host": HOST,
            "port": PORT,
            "username": self.svc,
            "password": SVC_PASSWORD,
            "tlsMode": "disabled",
            "connectTimeout": 5,
            "provisioning": True,
            "userNamePattern": "^" + self.p,
            "databaseNamePattern": "^" + self.p,
            **extra,
        }


def _drop_everything(prefix: str) -> None:
    like = prefix.replace("_", "\\_") + "%"
    for (db,) in q("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s", (like,)):
        q(f"DROP DATABASE IF EXISTS {ident(db)}")
    for user, host, is_role in q("SELECT User, Host, is_role FROM mysql.user WHERE User LIKE %s", (like,)):
        if is_role == "Y":
            q(f"DROP ROLE IF EXISTS {ident(user)}")
        else:
            q("DROP USER IF EXISTS %s@%s", (user, host))
    q("DELETE FROM mysql.db WHERE User LIKE %s", (like,))  # grants left on names of dropped accounts
    q("FLUSH PRIVILEGES")


@pytest.fixture(scope="session")
def env():
    try:
        admin().close()
    except pymysql.Error as exc:
        pytest.fail(f"no MariaDB/MySQL at {HOST}:{PORT} as root: {exc}")
    e = Env(f"gov_t_{secrets.token_hex(3)}_")
    db_grant = ident(e.db.replace("_", "\\_"))
    try:
        statements = [
            (f"CREATE DATABASE {ident(e.db)}", None),
            (f"CREATE DATABASE {ident(e.db2)} CHARACTER SET latin1", None),
            (f"CREATE ROLE {ident(e.readers)}", None),
            (f"CREATE ROLE {ident(e.analysts)}", None),
            (f"GRANT {ident(e.readers)} TO {ident(e.analysts)}", None),
            (f"GRANT SELECT ON {db_grant}.* TO {ident(e.readers)}", None),
            ("CREATE USER %s@'%%' IDENTIFIED BY %s", (e.svc, SVC_PASSWORD)),
            ("GRANT SELECT ON mysql.* TO %s@'%%'", (e.svc,)),
            ("GRANT SHOW DATABASES, CREATE USER ON *.* TO %s@'%%'", (e.svc,)),
            (f"GRANT ALL PRIVILEGES ON {db_grant}.* TO %s@'%%' WITH GRANT OPTION", (e.svc,)),
            (f"GRANT {ident(e.readers)} TO %s@'%%' WITH ADMIN OPTION", (e.svc,)),
            (f"GRANT {ident(e.analysts)} TO %s@'%%' WITH ADMIN OPTION", (e.svc,)),
            ("CREATE USER %s@'%%' IDENTIFIED BY %s", (e.weak, SVC_PASSWORD)),
            ("GRANT SELECT ON mysql.* TO %s@'%%'", (e.weak,)),
            ("GRANT SHOW DATABASES ON *.* TO %s@'%%'", (e.weak,)),
            ("CREATE USER %s@'%%' IDENTIFIED BY %s", (e.blind, SVC_PASSWORD)),
            ("CREATE USER %s@'%%'", (e.alice,)),
            (f"GRANT {ident(e.analysts)} TO %s@'%%'", (e.alice,)),
            ("CREATE USER %s@'localhost' WITH MAX_USER_CONNECTIONS 5", (e.bob,)),
            (f"GRANT SELECT, INSERT ON {db_grant}.* TO %s@'localhost'", (e.bob,)),
            (f"GRANT ALL ON {ident(e.db2)}.* TO %s@'localhost'", (e.bob,)),
            (f"GRANT SELECT ON {ident(e.p + '%%')}.* TO %s@'localhost'", (e.bob,)),
            ("GRANT PROCESS ON *.* TO %s@'localhost'", (e.bob,)),
            ("ALTER USER %s@'localhost' ACCOUNT LOCK", (e.bob,)),
        ]
        for statement, params in statements:
            q(statement, params)
        yield e
    finally:
        _drop_everything(e.p)


def run(command: str, config: dict, input: dict | None = None):
    return mysql.invoke(command, config, input)


def accounts(config: dict) -> dict[str, dict]:
    outputs, _ = run("std:account:list", config)
    return {o["identity"]: o for o in outputs}


def entitlements(config: dict) -> dict[str, dict]:
    outputs, _ = run("std:entitlement:list", config)
    return {o["identity"]: o for o in outputs}


def read(config: dict, identity: str) -> dict:
    outputs, _ = run("std:account:read", config, {"identity": identity})
    assert len(outputs) == 1
    return outputs[0]["attributes"]


# -- the acceptance suite ----------------------------------------------------------------------------


class TestMysqlAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return mysql

    @pytest.fixture
    def good_config(self, env):
        return env.config()

    @pytest.fixture
    def bad_configs(self, env):
        good = env.config()
        return {
            "wrong port": {**good, "port": free_port()},
            "wrong password": {**good, "password": "not-the-password"},
            "unknown user": {**good, "username": env.p + "nobody"},
            "no CREATE USER for provisioning": {**good, "username": env.weak},
            "cannot read the grant tables": {**good, "username": env.blind},
            "TLS required, server without TLS": {**good, "tlsMode": "required"},
        }

    @pytest.fixture
    def new_account(self, env):
        return {
            "identity": env.p + "acceptance@%",
            "attributes": {"password": "Acceptance-" + secrets.token_hex(4)},
        }


# -- connection ---------------------------------------------------------------------------------------


def connection_error(config: dict) -> str:
    return _connection_error(mysql, config)


def test_connection_errors_are_clear(env):
    port = free_port()
    assert_connection_errors(
        mysql,
        env.config(),
        {
            "wrong port": (env.config(port=port), f"cannot connect to 127.0.0.1:{port}: connection refused"),
            "unknown host": (
                env.config(host="no-such-host.invalid"),
                "cannot connect to no-such-host.invalid:3306: unknown host no-such-host.invalid",
            ),
            "TLS required, server without TLS": (
                env.config(tlsMode="required"),
                "cannot connect to 127.0.0.1:3306: the server does not support TLS (tlsMode required)",
            ),
            "unknown user": (
                env.config(username=env.p + "nobody"),
                f"authentication failed for user {env.p}nobody at 127.0.0.1:3306: wrong password, "
                "no such user, or the user may not connect from this host",
            ),
        },
    )


def test_wrong_password_is_reported_without_the_password(env):
    wrong = "Wr0ng-" + secrets.token_hex(6)
    # The same account with its password connects: the failure is the password.
    assert_connection_errors(
        mysql,
        env.config(),
        {
            "wrong password": (
                env.config(password=wrong),
                f"authentication failed for user {env.svc} at 127.0.0.1:3306: wrong password, "
                "no such user, or the user may not connect from this host",
            )
        },
        secrets=[wrong],
    )


def test_missing_privileges_are_named(env):
    assert connection_error(env.config(username=env.weak)) == (
        f"the service account {env.weak} lacks CREATE USER, needed for provisioning: "
        "GRANT CREATE USER ON *.* TO the service account, or turn provisioning off"
    )
    assert run("std:test-connection", env.config(username=env.weak, provisioning=False))[0] == [{}]
    message = connection_error(env.config(username=env.blind, provisioning=False))
    assert message.startswith(f"the service account {env.blind} cannot read mysql.user, mysql.db")
    assert message.endswith("GRANT SELECT ON mysql.* TO the service account")
    q("GRANT SELECT ON mysql.* TO %s@'%%'", (env.blind,))
    try:
        assert connection_error(env.config(username=env.blind, provisioning=False)) == (
            f"the service account {env.blind} lacks SHOW DATABASES, needed to list every database: "
            "GRANT SHOW DATABASES ON *.* TO the service account"
        )
    finally:
        q("REVOKE SELECT ON mysql.* FROM %s@'%%'", (env.blind,))


def test_config_is_checked(env):
    with pytest.raises(ConfigError, match="sslCa"):
        run("std:test-connection", env.config(connectionOption="tls", tlsMode="verify"))
    with pytest.raises(ConfigError, match="'port'"):
        run("std:test-connection", env.config(port=70000))
    with pytest.raises(ConfigError, match="userNamePattern"):
        run("std:test-connection", env.config(userNamePattern="(unclosed"))


# -- listing ------------------------------------------------------------------------------------------


def test_accounts_are_the_users_at_hosts(env):
    found = accounts(env.config())
    assert set(found) == {f"{u}@%" for u in (env.svc, env.weak, env.blind, env.alice)} | {
        f"{env.bob}@localhost"
    }
    alice = found[f"{env.alice}@%"]["attributes"]
    assert alice["memberOf"] == [f"role:{env.analysts}"]  # direct grants only; readers comes by implication
    assert alice["enabled"] is True and alice["user"] == env.alice and alice["host"] == "%"
    assert alice["maxUserConnections"] is None and alice["globalPrivileges"] == []
    bob = found[f"{env.bob}@localhost"]["attributes"]
    assert bob["enabled"] is False  # ACCOUNT LOCK
    assert bob["maxUserConnections"] == 5
    assert bob["globalPrivileges"] == ["PROCESS"]
    assert bob["memberOf"] == sorted(
        [f"database:{env.db2}:ALL", f"database:{env.db}:INSERT", f"database:{env.db}:SELECT"]
    )
    assert bob["otherGrants"] == [f"{env.p}%.*: SELECT"]  # a wildcard grant is not an entitlement
    svc = found[f"{env.svc}@%"]["attributes"]
    assert svc["memberOf"] == [f"role:{env.analysts}", f"role:{env.readers}", f"database:{env.db}:ALL"]
    assert set(svc["globalPrivileges"]) == {"SHOW DATABASES", "CREATE USER"}
    assert svc["authPlugin"] == "mysql_native_password"


def test_entitlements_and_their_place_in_the_inventory(env):
    found = entitlements(env.config())
    db_ents = [i for i in found if i.startswith(f"database:{env.db}:")]
    for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "ALL"):
        assert f"database:{env.db}:{privilege}" in db_ents
    assert {i for i in found if i.startswith("role:")} == {f"role:{env.readers}", f"role:{env.analysts}"}
    select = found[f"database:{env.db}:SELECT"]
    m = mysql.spec.map_entitlement(select)
    assert (m.resource_id, m.resource_name, m.resource_kind) == (f"database:{env.db}", env.db, "database")
    assert (m.role_id, m.role_name) == ("SELECT", "Select")
    everything = mysql.spec.map_entitlement(found[f"database:{env.db2}:ALL"])
    assert f"database:{env.db2}:SELECT" in everything.implies and everything.role_name == "All privileges"
    assert found[f"database:{env.db2}:ALL"]["attributes"]["charset"] == "latin1"
    analysts = mysql.spec.map_entitlement(found[f"role:{env.analysts}"])
    assert (analysts.resource_id, analysts.resource_kind, analysts.role_id) == (
        f"role:{env.analysts}",
        "role",
        "member",
    )
    assert analysts.implies == [f"role:{env.readers}"]
    assert found[f"role:{env.readers}"]["attributes"]["implies"] == [f"database:{env.db}:SELECT"]
    # Nothing outside the scope: not the system databases, not the server's other roles.
    assert not [i for i in found if not i.startswith((f"database:{env.p}", f"role:{env.p}"))]


def test_reads(env):
    cfg = env.config()
    assert read(cfg, f"{env.bob}@localhost")["maxUserConnections"] == 5
    ent, _ = run("std:entitlement:read", cfg, {"identity": f"role:{env.readers}"})
    assert ent[0]["attributes"]["implies"] == [f"database:{env.db}:SELECT"]
    ent, _ = run("std:entitlement:read", cfg, {"identity": f"database:{env.db}:DELETE"})
    assert ent[0]["attributes"]["privilege"] == "DELETE"
    with pytest.raises(ObjectNotFound, match="exists only from host"):
        run("std:account:read", cfg, {"identity": f"{env.bob}@%"})
    with pytest.raises(ObjectNotFound, match="is a role"):
        run("std:account:read", cfg, {"identity": f"{env.readers}@"})
    with pytest.raises(ObjectNotFound, match="outside this source's scope"):
        run("std:account:read", cfg, {"identity": "root@localhost"})
    with pytest.raises(ObjectNotFound, match="no such user"):
        run("std:account:read", cfg, {"identity": env.p + "ghost@%"})
    with pytest.raises(ObjectNotFound, match="no role"):
        run("std:entitlement:read", cfg, {"identity": f"role:{env.alice}"})
    with pytest.raises(ObjectNotFound, match="no database"):
        run("std:entitlement:read", cfg, {"identity": "database:mysql:SELECT"})
    with pytest.raises(InputError, match="not a database privilege"):
        run("std:entitlement:read", cfg, {"identity": f"database:{env.db}:FLY"})
    with pytest.raises(InputError, match="not an entitlement"):
        run("std:entitlement:read", cfg, {"identity": f"table:{env.db}:SELECT"})


def test_listing_streams_from_an_unbuffered_cursor(env, monkeypatch):
    """Rows come from an SSCursor: the connector's session is still inside its query at the first object."""
    connections: list[pymysql.connections.Connection] = []
    real = pymysql.connections.Connection.cursor

    def spy(self, cursor=None):
        if cursor is pymysql.cursors.SSCursor:
            connections.append(self)
        return real(self, cursor)

    monkeypatch.setattr(pymysql.connections.Connection, "cursor", spy)
    seen: list[bool] = []

    def emit(kind, data):
        if kind == "output":
            result = connections[-1]._result
            seen.append(result is not None and result.unbuffered_active)

    result = mysql.execute("std:account:list", env.config(), emit=emit)
    # Every account was handed over while its rows were still being read from the server.
    assert len(seen) == result.sent == 5 and all(seen)


def test_cancelled_listing_stops_cleanly(env, monkeypatch):
    before = accounts(env.config())
    monkeypatch.setattr("connectors.sdk.connector.CANCEL_CHECK_EVERY", 1)
    sent: list[dict] = []
    with pytest.raises(Cancelled):
        mysql.execute(
            "std:account:list", env.config(), emit=lambda k, d: sent.append(d), should_cancel=lambda: True
        )
    assert len(sent) < len(before)
    assert accounts(env.config()) == before


# -- provisioning -------------------------------------------------------------------------------------


def grants(user: str, host: str = "%") -> list[str]:
    return [g for (g,) in q("SHOW GRANTS FOR %s@%s", (user, host))]


def exists(user: str, host: str = "%") -> bool:
    return bool(q("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, host)))


def test_provisioning_lifecycle(env):
    cfg, user, password = env.config(), env.p + "carol", "Carol-" + secrets.token_hex(6)
    identity = f"{user}@10.0.0.%"
    analysts, select, insert = (
        f"role:{env.analysts}",
        f"database:{env.db}:SELECT",
        f"database:{env.db}:INSERT",
    )
    created, _ = run(
        "std:account:create",
        cfg,
        {"identity": identity, "attributes": {"password": password, "memberOf": [analysts, select]}},
    )
    assert created[0]["identity"] == identity
    assert created[0]["attributes"]["memberOf"] == [analysts, select]
    stored = q("SELECT authentication_string FROM mysql.user WHERE User = %s AND Host = '10.0.0.%%'", (user,))
    assert stored[0][0] == my_module.native_password_hash(password) and password not in stored[0][0]
    assert any(f"GRANT `{env.analysts}` TO" in g for g in grants(user, "10.0.0.%"))

    change = [
        {"op": "Remove", "attribute": "memberOf", "value": analysts},
        {"op": "Add", "attribute": "memberOf", "value": [insert]},
        {"op": "Set", "attribute": "maxUserConnections", "value": 3},
    ]
    updated, _ = run("std:account:update", cfg, {"identity": identity, "changes": change})
    attrs = updated[0]["attributes"]
    assert attrs["memberOf"] == [insert, select] and attrs["maxUserConnections"] == 3
    assert not any(env.analysts in g for g in grants(user, "10.0.0.%"))

    run("std:account:update", cfg, {"identity": identity, "changes": [{"op": "Set", "attribute": "memberOf", "value": f"database:{env.db}:ALL"}]})  # fmt: skip
    assert read(cfg, identity)["memberOf"] == [f"database:{env.db}:ALL"]
    # Revoking one privilege of ALL leaves the others, listed one by one.
    run("std:account:update", cfg, {"identity": identity, "changes": [{"op": "Remove", "attribute": "memberOf", "value": select}]})  # fmt: skip
    held = read(cfg, identity)["memberOf"]
    assert select not in held and insert in held and f"database:{env.db}:ALL" not in held
    run("std:account:update", cfg, {"identity": identity, "changes": [{"op": "Set", "attribute": "memberOf", "value": []}]})  # fmt: skip
    assert read(cfg, identity)["memberOf"] == []

    disabled, _ = run("std:account:disable", cfg, {"identity": identity})
    assert disabled[0]["attributes"]["enabled"] is False
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host=HOST, user=user, password=password, connect_timeout=5).close()
    enabled, _ = run("std:account:enable", cfg, {"identity": identity})
    assert enabled[0]["attributes"]["enabled"] is True

    run("std:account:delete", cfg, {"identity": identity})
    assert not exists(user, "10.0.0.%")
    with pytest.raises(ObjectNotFound):
        run("std:account:read", cfg, {"identity": identity})


def test_created_account_can_log_in_with_its_password(env):
    user, password = env.p + "dora", "D0ra-" + secrets.token_hex(6)
    run("std:account:create", env.config(), {"identity": user, "attributes": {"password": password, "memberOf": f"database:{env.db}:SELECT"}})  # fmt: skip
    try:
        with pymysql.connect(
            host=HOST, user=user, password=password, database=env.db, connect_timeout=5
        ) as c:
            with c.cursor() as cur:
                cur.execute("SELECT CURRENT_USER()")
                assert cur.fetchone()[0] == f"{user}@%"  # defaultHost
    finally:
        run("std:account:delete", env.config(), {"identity": f"{user}@%"})


def test_identifiers_are_quoted(env):
    user = env.p + 'o\'brien "x"; DROP USER root; -- `'
    identity = user + "@%"
    created, _ = run("std:account:create", env.config(), {"identity": identity, "attributes": {"memberOf": f"role:{env.readers}"}})  # fmt: skip
    assert created[0]["identity"] == identity and created[0]["attributes"]["memberOf"] == [
        f"role:{env.readers}"
    ]
    db = env.p + "we`ird_db"
    q(f"CREATE DATABASE {ident(db)}")
    q(f"GRANT ALL ON {ident(db.replace('_', chr(92) + '_'))}.* TO %s@'%%' WITH GRANT OPTION", (env.svc,))
    run("std:account:update", env.config(), {"identity": identity, "changes": [{"op": "Add", "attribute": "memberOf", "value": f"database:{db}:SELECT"}]})  # fmt: skip
    assert f"database:{db}:SELECT" in read(env.config(), identity)["memberOf"]
    # The _ of the name was escaped: the grant is on that database only, not a pattern.
    assert q("SELECT Db FROM mysql.db WHERE User = %s", (user,)) == [(db.replace("_", "\\_"),)]
    run("std:account:delete", env.config(), {"identity": identity})
    assert not exists(user) and exists("root", "localhost")


def test_failed_grant_changes_nothing(env):
    identity = env.p + "erin@%"
    run("std:account:create", env.config(), {"identity": identity})
    # The service account holds no GRANT OPTION on db2: the second grant fails and the first is undone.
    change = [
        {"op": "Add", "attribute": "memberOf", "value": [f"role:{env.readers}", f"database:{env.db2}:SELECT"]}
    ]
    with pytest.raises(ConnectorError) as caught:
        run("std:account:update", env.config(), {"identity": identity, "changes": change})
    message = str(caught.value)
    assert message.startswith(f"cannot grant database:{env.db2}:SELECT for {identity}: ")
    assert "WITH GRANT OPTION" in message
    assert read(env.config(), identity)["memberOf"] == []
    with pytest.raises(ObjectNotFound, match="no role"):
        run("std:account:update", env.config(), {"identity": identity, "changes": [{"op": "Add", "attribute": "memberOf", "value": "role:nobody"}]})  # fmt: skip
    with pytest.raises(InputError, match="cannot be set"):
        run("std:account:update", env.config(), {"identity": identity, "changes": [{"op": "Set", "attribute": "user", "value": "x"}]})  # fmt: skip
    run("std:account:delete", env.config(), {"identity": identity})


def test_failed_create_leaves_no_account(env):
    user = env.p + "frank"
    with pytest.raises(ConnectorError, match="cannot grant"):
        run("std:account:create", env.config(), {"identity": user + "@%", "attributes": {"memberOf": f"database:{env.db2}:ALL"}})  # fmt: skip
    assert not exists(user)


def test_provisioning_guards(env):
    with pytest.raises(ConnectorError, match="provisioning is turned off"):
        run("std:account:create", env.config(provisioning=False), {"identity": env.p + "gina@%"})
    assert not exists(env.p + "gina")
    with pytest.raises(InputError, match="outside this source's scope"):
        run("std:account:create", env.config(), {"identity": "not_governed_" + secrets.token_hex(3) + "@%"})
    with pytest.raises(ConnectorError, match="already exists"):
        run("std:account:create", env.config(), {"identity": env.alice + "@%"})
    with pytest.raises(ConnectorError, match="service account"):
        run("std:account:delete", env.config(), {"identity": env.svc + "@%"})
    with pytest.raises(ConnectorError, match="service account"):
        run("std:account:disable", env.config(), {"identity": env.svc + "@%"})
    assert exists(env.svc)


def test_passwords_never_appear_in_errors(env, caplog):
    password = "Secret-" + secrets.token_hex(6)
    with pytest.raises(ConnectorError) as caught:
        run("std:account:create", env.config(), {"identity": env.alice + "@%", "attributes": {"password": password}})  # fmt: skip
    assert password not in str(caught.value) and password not in caplog.text
    assert my_module.native_password_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
