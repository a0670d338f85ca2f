"""The Redis ACL connector against a private redis-server started for the session on a spare port.

The server loads its users from an ACL file: a password-protected ``default`` user (so a wrong password is
a real failure), the service account ``gov-svc`` with only the ACL subcommands it needs, weaker service
accounts, and a few application users. A server that does not start fails the tests (no skip).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis

from connectors.redis import connector as redis_module
from connectors.redis.connector import connector as redis_acl
from connectors.sdk import ConfigError, ConnectorError, InputError, ObjectNotFound
from connectors.testing import (
    ConnectorAcceptanceSuite,
    assert_connection_errors,
    free_port,
    stop_process,
)
from connectors.testing import connection_error as _connection_error

HOST = "127.0.0.1"
ADMIN_PASSWORD = "adm-" + secrets.token_hex(8)
SVC_PASSWORD = "svc-" + secrets.token_hex(8)
SVC_RULES = "+ping +acl|users +acl|getuser +acl|cat +acl|dryrun +acl|setuser +acl|deluser +acl|save"
ACL_FILE = f"""\
user default on >{ADMIN_PASSWORD} ~* &* +@all
user gov-svc on >{SVC_PASSWORD} -@all {SVC_RULES}
user gov-weak on >{SVC_PASSWORD} -@all +ping +acl|users +acl|getuser +acl|cat +acl|dryrun
user gov-blind on >{SVC_PASSWORD} -@all +ping
user app-alice on nopass ~app:* &news.* -@all +@read
user app-bob off >bob-password %R~ro:* -@all +@write +get
"""


@pytest.fixture(scope="session")
def server():
    """``(port, acl file)`` of a private redis-server; stopped and removed at the end."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="gov-redis-"))
    acl = folder / "users.acl"
    acl.write_text(ACL_FILE)
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(folder),
         "--daemonize", "no", "--logfile", "", "--aclfile", str(acl)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(host=HOST, port=port, password=ADMIN_PASSWORD).ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port} (exit {proc.poll()})")
                time.sleep(0.02)
        yield port, acl
    finally:
        stop_process(proc)
        shutil.rmtree(folder, ignore_errors=True)


def admin(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, password=ADMIN_PASSWORD, decode_responses=True)


def config(port: int, **extra) -> dict:
    return {
        "host": HOST,
        "port": port,
        "username": "gov-svc",
        "password": SVC_PASSWORD,
        "connectTimeout": 5,
        "provisioning": True,
        "userNamePattern": "^(app|gov)-",
        **extra,
    }


def run(command: str, cfg: dict, input: dict | None = None):
    return redis_acl.invoke(command, cfg, input)


def read(cfg: dict, name: str) -> dict:
    outputs, _ = run("std:account:read", cfg, {"identity": name})
    return outputs[0]["attributes"]


# -- the acceptance suite ----------------------------------------------------------------------------


class TestRedisAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return redis_acl

    @pytest.fixture
    def good_config(self, server):
        return config(server[0])

    @pytest.fixture
    def bad_configs(self, server):
        port = server[0]
        return {
            "wrong port": config(free_port()),
            "wrong password": config(port, password="not-the-password"),
            "unknown user": config(port, username="gov-nobody"),
            "no ACL SETUSER for provisioning": config(port, username="gov-weak"),
            "cannot read ACLs": config(port, username="gov-blind", provisioning=False),
            "TLS against a plain server": config(port, tls=True, connectTimeout=2),
        }

    @pytest.fixture
    def new_account(self):
        return {
            "identity": "app-acceptance",
            "attributes": {"password": "Acceptance-" + secrets.token_hex(4)},
        }


# -- connection ---------------------------------------------------------------------------------------


def connection_error(cfg: dict) -> str:
    return _connection_error(redis_acl, cfg)


def test_connection_errors_are_clear(server):
    port = server[0]
    other = free_port()
    assert_connection_errors(
        redis_acl,
        config(port),
        {
            "wrong port": (config(other), f"cannot connect to 127.0.0.1:{other}: connection refused"),
            "unknown host": (
                config(port, host="no-such-host.invalid"),
                f"cannot connect to no-such-host.invalid:{port}: unknown host no-such-host.invalid",
            ),
        },
    )
    with pytest.raises(ConfigError, match="password"):
        run("std:test-connection", config(port, username="", password=""))
    assert connection_error(config(port, tls=True, connectTimeout=2)).startswith(
        f"cannot connect to 127.0.0.1:{port}: "
    )


def test_wrong_password_is_reported_without_the_password(server):
    port = server[0]
    wrong = "Wr0ng-" + secrets.token_hex(6)
    assert_connection_errors(
        redis_acl,
        config(port, username="default", password=ADMIN_PASSWORD),
        {
            user: (
                config(port, username=user, password=wrong),
                f"authentication failed for user {user} at 127.0.0.1:{port}: wrong password, "
                "no such user, or the user is disabled",
            )
            for user in ("gov-svc", "default")
        },
        secrets=[wrong],
    )


def test_missing_permissions_are_named(server):
    port = server[0]
    assert connection_error(config(port, username="gov-weak")) == (
        "the service account gov-weak may not run ACL SETUSER, needed for provisioning: "
        "ACL SETUSER gov-weak +acl|setuser, or turn provisioning off"
    )
    assert run("std:test-connection", config(port, username="gov-weak", provisioning=False))[0] == [{}]
    assert connection_error(config(port, username="gov-blind", provisioning=False)) == (
        "the service account gov-blind may not run ACL USERS, ACL CAT, ACL GETUSER: "
        "ACL SETUSER gov-blind +acl|users +acl|cat +acl|getuser"
    )
    with pytest.raises(ConfigError, match="userNamePattern"):
        run("std:test-connection", config(port, userNamePattern="(unclosed"))


# -- listing ------------------------------------------------------------------------------------------


def test_accounts_and_what_their_rules_allow(server):
    port = server[0]
    outputs, _ = run("std:account:list", config(port))
    found = {o["identity"]: o["attributes"] for o in outputs}
    assert set(found) == {
        "gov-svc",
        "gov-weak",
        "gov-blind",
        "app-alice",
        "app-bob",
    }  # not default: out of scope
    alice = found["app-alice"]
    assert alice["enabled"] is True and alice["nopass"] is True and alice["passwords"] == 0
    assert alice["memberOf"] == ["category:read", "channels:news.*", "keys:app:*"]
    bob = found["app-bob"]
    assert bob["enabled"] is False and bob["nopass"] is False and bob["passwords"] == 1
    assert "category:write" in bob["memberOf"] and "category:read" not in bob["memberOf"]
    assert "keys-read:ro:*" in bob["memberOf"]
    assert "+get" in bob["commandRules"]
    assert found["gov-blind"]["memberOf"] == []  # +ping alone is no whole category
    everyone, _ = run("std:account:list", config(port, userNamePattern=""))
    default = {o["identity"]: o for o in everyone}["default"]["attributes"]
    assert default["memberOf"] == ["category:all", "channels:*", "keys:*"]


def test_entitlements_and_their_place_in_the_inventory(server):
    port = server[0]
    outputs, _ = run("std:entitlement:list", config(port, keyPatterns=["cache:*"]))
    found = {o["identity"]: o for o in outputs}
    categories = admin(port).acl_cat()
    assert {f"category:{c}" for c in categories} | {"category:all"} <= set(found)
    for pattern in ("app:*", "ro:*", "cache:*"):
        for kind in ("keys", "keys-read", "keys-write"):
            assert f"{kind}:{pattern}" in found
    assert "channels:news.*" in found
    read_cat = redis_acl.spec.map_entitlement(found["category:read"])
    assert (read_cat.resource_id, read_cat.resource_name, read_cat.resource_kind, read_cat.role_id) == (
        "category:read",
        "@read",
        "command category",
        "allowed",
    )
    assert found["category:read"]["attributes"]["commands"] == len(admin(port).acl_cat("read"))
    keys = redis_acl.spec.map_entitlement(found["keys-read:ro:*"])
    assert (keys.resource_id, keys.resource_name, keys.resource_kind, keys.role_id) == (
        "keys:ro:*",
        "ro:*",
        "key pattern",
        "read",
    )
    assert redis_acl.spec.map_entitlement(found["keys:app:*"]).implies == [
        "keys-read:app:*",
        "keys-write:app:*",
    ]
    assert len(redis_acl.spec.map_entitlement(found["category:all"]).implies) == len(categories)


def test_reads(server):
    cfg = config(server[0])
    assert read(cfg, "app-alice")["memberOf"] == ["category:read", "channels:news.*", "keys:app:*"]
    ent, _ = run("std:entitlement:read", cfg, {"identity": "keys-write:app:*"})
    assert ent[0]["attributes"]["privilege"] == "write"
    ent, _ = run("std:entitlement:read", cfg, {"identity": "category:write"})
    assert ent[0]["attributes"]["resourceName"] == "@write"
    with pytest.raises(ObjectNotFound, match="no such ACL user"):
        run("std:account:read", cfg, {"identity": "app-ghost"})
    with pytest.raises(ObjectNotFound, match="outside this source's scope"):
        run("std:account:read", cfg, {"identity": "default"})
    with pytest.raises(ObjectNotFound, match="no category"):
        run("std:entitlement:read", cfg, {"identity": "category:flying"})
    with pytest.raises(ObjectNotFound, match="no user is granted"):
        run("std:entitlement:read", cfg, {"identity": "keys:nowhere:*"})
    with pytest.raises(InputError, match="not an entitlement"):
        run("std:entitlement:read", cfg, {"identity": "database:x"})


def test_users_are_read_a_page_at_a_time(server, monkeypatch):
    """With a page size of 2, five users take three pipelined round trips, and objects go out per page."""
    cfg = config(server[0], pageSize=2)
    pages: list[int] = []
    real = redis.client.Pipeline.execute

    def spy(self, *args, **kwargs):
        pages.append(len(self.command_stack))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", spy)
    sent_before_page: list[int] = []
    outputs: list[dict] = []

    def emit(kind, data):
        if kind == "output":
            outputs.append(data)
            sent_before_page.append(len(pages))

    redis_acl.execute("std:account:list", cfg, emit=emit)
    assert pages[1:] == [2, 2, 1]  # pages[0]: the category lists
    assert sent_before_page == [2, 2, 3, 3, 4]  # the first objects went out before the last page was fetched


def test_category_evaluation_follows_the_rules():
    class FakeCats(redis_module.Categories):
        def __init__(self):
            self.members = {
                "read": frozenset({"get", "keys", "object|freq"}),
                "write": frozenset({"set", "del"}),
            }
            self.universe = frozenset().union(*self.members.values())
            self._held = {}
            self._by_command = {"get": frozenset({"get"}), "keys": frozenset({"keys"}), "object": frozenset({"object|freq"}),
                                "set": frozenset({"set"}), "del": frozenset({"del"})}  # fmt: skip

    cats = FakeCats()
    assert cats.held("+@all") == ["category:all"]
    assert cats.held("+@all -del") == ["category:read"]
    assert cats.held("-@all +@read -keys +set +del") == ["category:write"]
    assert cats.held("-@all +get +keys +object") == ["category:read"]
    assert cats.held("-@all +get +keys +object -object|freq") == []
    assert cats.held("+@read nocommands +@write") == ["category:write"]
    cats.members["small"] = frozenset({"get"})  # inside read: listed only when read is not
    cats._held.clear()
    assert cats.held("-@all +@read") == ["category:read"]
    assert cats.held("-@all +@read -keys") == ["category:small"]


# -- provisioning -------------------------------------------------------------------------------------


def test_provisioning_lifecycle(server):
    port, acl_file = server
    cfg = config(port, persistence="aclfile")
    password = "Carol-" + secrets.token_hex(6)
    created, _ = run(
        "std:account:create",
        cfg,
        {"identity": "app-carol", "attributes": {"password": password, "memberOf": ["category:read", "keys:app:*", "keys-read:shared:*"]}},
    )  # fmt: skip
    attrs = created[0]["attributes"]
    assert attrs["memberOf"] == ["category:read", "keys-read:shared:*", "keys:app:*"]
    assert attrs["enabled"] is True and attrs["passwords"] == 1
    # The server stores the hash the connector sent; the clear text is nowhere in the saved ACL file.
    saved = acl_file.read_text()
    assert "user app-carol on " in saved and password not in saved
    assert redis_module.password_hash(password)[1:] in admin(port).acl_getuser("app-carol")["passwords"]
    carol = redis.Redis(host=HOST, port=port, username="app-carol", password=password, decode_responses=True)
    assert carol.get("app:1") is None
    with pytest.raises(redis.exceptions.NoPermissionError):
        carol.set("app:1", "x")  # no @write yet

    change = [
        {"op": "Add", "attribute": "memberOf", "value": ["category:write", "channels:orders"]},
        {"op": "Remove", "attribute": "memberOf", "value": "keys-read:shared:*"},
    ]
    updated, _ = run("std:account:update", cfg, {"identity": "app-carol", "changes": change})
    assert updated[0]["attributes"]["memberOf"] == [
        "category:read", "category:write", "channels:orders", "keys:app:*",
    ]  # fmt: skip
    assert carol.set("app:1", "x") is True
    with pytest.raises(redis.exceptions.NoPermissionError):
        carol.get("shared:1")
    run("std:account:update", cfg, {"identity": "app-carol", "changes": [{"op": "Remove", "attribute": "memberOf", "value": ["category:write", "keys:app:*"]}]})  # fmt: skip
    attrs = read(cfg, "app-carol")
    assert attrs["memberOf"] == ["category:read", "channels:orders"]
    with pytest.raises(redis.exceptions.NoPermissionError):
        carol.get("app:1")

    disabled, _ = run("std:account:disable", cfg, {"identity": "app-carol"})
    assert disabled[0]["attributes"]["enabled"] is False
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host=HOST, port=port, username="app-carol", password=password).ping()
    assert run("std:account:enable", cfg, {"identity": "app-carol"})[0][0]["attributes"]["enabled"] is True

    run("std:account:delete", cfg, {"identity": "app-carol"})
    assert admin(port).acl_getuser("app-carol") is None and "app-carol" not in acl_file.read_text()
    carol.close()


def test_removing_a_category_from_all(server):
    cfg = config(server[0])
    run(
        "std:account:create",
        cfg,
        {"identity": "app-dora", "attributes": {"memberOf": ["category:all", "keys:*"]}},
    )
    assert read(cfg, "app-dora")["memberOf"] == ["category:all", "keys:*"]
    run("std:account:update", cfg, {"identity": "app-dora", "changes": [{"op": "Remove", "attribute": "memberOf", "value": "category:dangerous"}]})  # fmt: skip
    held = read(cfg, "app-dora")["memberOf"]
    assert held and "category:all" not in held and "category:dangerous" not in held
    assert admin(server[0]).acl_dryrun("app-dora", "get", "x") == "OK"
    assert admin(server[0]).acl_dryrun("app-dora", "flushall") != "OK"
    run("std:account:delete", cfg, {"identity": "app-dora"})


def test_provisioning_guards(server):
    port = server[0]
    cfg = config(port)
    with pytest.raises(ConnectorError, match="provisioning is turned off"):
        run("std:account:create", config(port, provisioning=False), {"identity": "app-erin"})
    with pytest.raises(InputError, match="outside this source's scope"):
        run("std:account:create", cfg, {"identity": "other-erin"})
    with pytest.raises(InputError, match="not a usable ACL user name"):
        run("std:account:create", cfg, {"identity": "app-erin on >x +@all"})
    with pytest.raises(ConnectorError, match="already exists"):
        run("std:account:create", cfg, {"identity": "app-alice"})
    with pytest.raises(InputError, match="spaces"):
        run("std:account:update", cfg, {"identity": "app-alice", "changes": [{"op": "Add", "attribute": "memberOf", "value": "keys:a b"}]})  # fmt: skip
    with pytest.raises(ObjectNotFound, match="no such category"):
        run("std:account:update", cfg, {"identity": "app-alice", "changes": [{"op": "Add", "attribute": "memberOf", "value": "category:flying"}]})  # fmt: skip
    with pytest.raises(ConnectorError, match="service account"):
        run("std:account:delete", cfg, {"identity": "gov-svc"})
    with pytest.raises(ConnectorError, match="service account"):
        run("std:account:disable", cfg, {"identity": "gov-svc"})
    assert admin(port).acl_getuser("app-erin") is None
    assert read(cfg, "app-alice")["memberOf"] == ["category:read", "channels:news.*", "keys:app:*"]
