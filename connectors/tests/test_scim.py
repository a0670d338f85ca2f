"""The SCIM connector against a real SCIM 2.0 server.

A session fixture runs ``scim2-server`` (in memory, bearer token ``test-token``) on a spare loopback port
and fills it over HTTP with httpx.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from connectors.scim.connector import connector as scim
from connectors.sdk import ConfigError, ConnectorError, InputError, ObjectNotFound, StateError
from connectors.testing import (
    ConnectorAcceptanceSuite,
    assert_connection_errors,
    free_port,
    stop_process,
)
from connectors.testing import connection_error as _connection_error

TOKEN = "test-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def scim2_server_command() -> str:
    found = Path(sys.executable).parent / "scim2-server"
    if found.exists():
        return str(found)
    found = shutil.which("scim2-server")
    if not found:
        raise RuntimeError("the scim2-server console script is missing: pip install scim2-server")
    return found


class ScimServer:
    """``scim2-server`` on loopback: ``start()``, ``stop()``, ``url`` (the base URL, ending in /v2)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v2"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ScimServer:
        command = [scim2_server_command(), "--hostname", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*command, "--bearer-token", TOKEN], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if (
                    httpx.get(f"{self.url}/ServiceProviderConfig", headers=HEADERS, timeout=1).status_code
                    == 200
                ):
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("scim2-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url + "/", headers=HEADERS, timeout=10)


def add_user(http: httpx.Client, user_name: str, given: str, family: str, **extra) -> str:
    body = {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "displayName": f"{given} {family}",
        "emails": [{"value": f"{user_name}@example.org", "type": "work", "primary": True}],
        "active": True,
        **extra,
    }
    response = http.post("Users", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def add_group(http: httpx.Client, name: str, members: list[str]) -> str:
    body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in members]}
    response = http.post("Groups", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def patch_members(http: httpx.Client, group_id: str, op: str, user_id: str) -> None:
    if op == "add":
        operation = {"op": "add", "path": "members", "value": [{"value": user_id}]}
    else:
        operation = {"op": "remove", "path": f'members[value eq "{user_id}"]'}
    response = http.patch(f"Groups/{group_id}", json={"schemas": [PATCH_SCHEMA], "Operations": [operation]})
    assert response.status_code in (200, 204), response.text


class Env:
    def __init__(self, server: ScimServer):
        self.server = server
        self.users: dict[str, str] = {}
        self.groups: dict[str, str] = {}

    def config(self, **extra) -> dict:
        return {
            "connectionOption": "bearer",
            "baseUrl": self.server.url,
            "token": TOKEN,
            "timeout": 10,
            "provisioning": True,
            **extra,
        }


@pytest.fixture(scope="session")
def env():
    server = ScimServer().start()
    try:
        e = Env(server)
        with server.client() as http:
            for user_name, given, family, title in (
                ("alice", "Alice", "Archer", "Engineer"),
                ("bob", "Bob", "Baker", "Engineer"),
                ("carol", "Carol", "Cooper", "Manager"),
                ("dave", "Dave", "Dean", "Accountant"),
                ("eve", "Eve", "Evans", "Auditor"),
            ):
                e.users[user_name] = add_user(http, user_name, given, family, title=title)
            u = e.users
            e.groups["engineering"] = add_group(http, "engineering", [u["alice"], u["bob"]])
            e.groups["admins"] = add_group(http, "admins", [u["alice"]])
            e.groups["finance"] = add_group(http, "finance", [u["dave"]])
        yield e
    finally:
        server.stop()


def run(command: str, config: dict, input: dict | None = None):
    return scim.invoke(command, config, input)


def listing(config: dict, command: str = "std:account:list", **input) -> dict[str, dict]:
    outputs, _ = run(command, config, input)
    return {o["identity"]: o for o in outputs}


def connection_error(config: dict) -> str:
    return _connection_error(scim, config, secrets=[TOKEN])


# -- the acceptance suite ---------------------------------------------------------------------------------


class TestScimAcceptance(ConnectorAcceptanceSuite):
    @pytest.fixture
    def connector(self):
        return scim

    @pytest.fixture
    def good_config(self, env):
        return env.config()

    @pytest.fixture
    def bad_configs(self, good_config, env):
        return {
            "wrong token": {**good_config, "token": "not-the-token"},
            "basic authentication refused": {
                **good_config,
                "connectionOption": "basic",
                "username": "admin",
                "password": "secret",
            },  # fmt: skip
            "wrong host": {**good_config, "baseUrl": "http://no-such-host.invalid/v2"},
            "wrong port": {**good_config, "baseUrl": f"http://127.0.0.1:{free_port()}/v2"},
            "wrong base path": {**good_config, "baseUrl": env.server.url.removesuffix("/v2") + "/scim"},
        }

    @pytest.fixture
    def new_account(self):
        return {
            "identity": "acceptance",
            "attributes": {"givenName": "Accept", "familyName": "Ance", "email": "acceptance@example.org"},
        }


class TestScimAcceptanceSmallPages(TestScimAcceptance):
    @pytest.fixture
    def good_config(self, env):
        return env.config(pageSize=2)


# -- connection -------------------------------------------------------------------------------------------


def test_connection_errors_name_the_reason(env):
    good = env.config()
    host = f"127.0.0.1:{env.server.port}"
    port = free_port()
    assert_connection_errors(
        scim,
        good,
        {
            "wrong token": (
                {**good, "token": "nope"},
                f"authentication failed at {host}: the server refused the bearer token (401)",
            ),
            "basic authentication refused": (
                {**good, "connectionOption": "basic", "username": "u", "password": "p4ss"},
                f"authentication failed at {host}: the server refused the username and password (401)",
            ),
            "wrong port": (
                {**good, "baseUrl": f"http://127.0.0.1:{port}/v2"},
                f"cannot connect to 127.0.0.1:{port}: connection refused",
            ),
            "wrong host": (
                {**good, "baseUrl": "http://no-such-host.invalid/v2"},
                "cannot connect to no-such-host.invalid: unknown host no-such-host.invalid",
            ),
        },
        secrets=[TOKEN],
    )
    wrong_path = env.server.url.removesuffix("/v2") + "/scim"
    assert connection_error({**good, "baseUrl": wrong_path}).startswith(
        f"no SCIM endpoint at {wrong_path}/Users (404): check the base URL"
    )
    with pytest.raises(ConfigError, match="token"):
        run("std:test-connection", {**good, "token": ""})


# -- listing ----------------------------------------------------------------------------------------------


def test_accounts_and_groups(env):
    config = env.config()
    accounts = listing(config)
    u, g = env.users, env.groups
    assert set(u.values()) <= set(accounts)
    alice = accounts[u["alice"]]["attributes"]
    assert (alice["userName"], alice["givenName"], alice["familyName"]) == ("alice", "Alice", "Archer")
    assert (alice["email"], alice["title"], alice["active"]) == ("alice@example.org", "Engineer", True)
    assert alice["created"] and alice["lastModified"]
    assert sorted(alice["groups"]) == sorted([g["engineering"], g["admins"]])
    assert accounts[u["eve"]]["attributes"]["groups"] == []

    ents = listing(config, "std:entitlement:list")
    assert set(g.values()) <= set(ents)
    eng = ents[g["engineering"]]
    assert eng["attributes"]["displayName"] == "engineering"
    mapping = scim.spec.map_entitlement(eng)
    assert (mapping.resource_id, mapping.resource_name, mapping.role_id) == (
        g["engineering"],
        "engineering",
        "member",
    )

    read, _ = run("std:account:read", config, {"identity": u["alice"]})
    assert read[0]["attributes"] == alice
    read, _ = run("std:entitlement:read", config, {"identity": g["engineering"]})
    assert read[0] == eng
    with pytest.raises(ObjectNotFound, match="no account"):
        run("std:account:read", config, {"identity": "no-such-id"})
    with pytest.raises(ObjectNotFound, match="no group"):
        run("std:entitlement:read", config, {"identity": "no-such-id"})


def test_filters_and_membership_from_users(env):
    u, g = env.users, env.groups
    config = env.config(userFilter='title eq "Engineer"', groupFilter='displayName eq "engineering"')
    accounts = listing(config)
    assert set(accounts) == {u["alice"], u["bob"]}
    assert accounts[u["alice"]]["attributes"]["groups"] == [g["engineering"]]  # admins is outside the filter
    assert set(listing(config, "std:entitlement:list")) == {g["engineering"]}
    # This server leaves User.groups empty: read from the Users, nobody holds a group.
    from_users = listing(env.config(membershipSource="user"))
    assert all(a["attributes"]["groups"] == [] for a in from_users.values())


def test_listings_page(env):
    outputs, result = run("std:account:list", env.config(pageSize=2))
    assert len(outputs) >= 5 and len({o["identity"] for o in outputs}) == len(outputs)
    assert result.keep_alives >= (len(outputs) + 1) // 2 - 1  # one keep-alive between pages
    whole, result = run("std:account:list", env.config(pageSize=1000))
    assert result.keep_alives == 0
    assert {o["identity"]: o for o in outputs} == {o["identity"]: o for o in whole}


# -- deltas ---------------------------------------------------------------------------------------------------


def test_delta_by_last_modified(env):
    config = env.config()
    u, g = env.users, env.groups
    with env.server.client() as http:  # the newest change, so what the test looks at is older than since
        zed = add_user(http, "zed", "Zed", "Zimmer")
        zed_team = add_group(http, "zed-team", [zed])
    _, result = run("std:account:list", config, {"stateful": True})
    since = result.state["since"]
    _, ent_result = run("std:entitlement:list", config, {"stateful": True})
    time.sleep(0.01)
    with env.server.client() as http:
        response = http.patch(
            f"Users/{u['eve']}",
            json={
                "schemas": [PATCH_SCHEMA],
                "Operations": [{"op": "replace", "path": "title", "value": "Chief"}],
            },
        )
        assert response.status_code in (200, 204), response.text
        patch_members(http, g["finance"], "add", u["carol"])
    delta = {
        o["identity"]: o
        for o in run("std:account:list", config, {"stateful": True, "state": result.state})[0]
    }
    assert delta[u["eve"]]["attributes"]["title"] == "Chief"
    assert g["finance"] in delta[u["carol"]]["attributes"]["groups"]
    assert u["alice"] not in delta and u["bob"] not in delta
    ents, new = run("std:entitlement:list", config, {"stateful": True, "state": ent_result.state})
    # finance changed; zed-team holds the newest stamp (since itself, re-read as "ge" includes it).
    assert g["finance"] in {e["identity"] for e in ents}
    assert {e["identity"] for e in ents} <= {g["finance"], zed_team}
    assert new.state["since"] > ent_result.state["since"]
    assert since
    with env.server.client() as http:
        patch_members(http, g["finance"], "remove", u["carol"])
    with pytest.raises(StateError, match="ISO 8601"):
        run("std:account:list", config, {"stateful": True, "state": {"since": "yesterday"}})


# -- provisioning -----------------------------------------------------------------------------------------------


def test_provisioning(env):
    config = env.config()
    g = env.groups
    created, _ = run(
        "std:account:create",
        config,
        {"attributes": {"userName": "grace", "givenName": "Grace", "familyName": "Hopper", "email": "grace@example.org",
                        "title": "Admiral", "externalId": "E-1", "groups": [g["admins"]]}},
    )  # fmt: skip
    grace = created[0]["identity"]
    attrs = created[0]["attributes"]
    assert (attrs["userName"], attrs["familyName"], attrs["email"], attrs["externalId"]) == (
        "grace", "Hopper", "grace@example.org", "E-1",
    )  # fmt: skip
    assert attrs["active"] is True and attrs["groups"] == [g["admins"]]
    with pytest.raises(ConnectorError, match="409"):
        run("std:account:create", config, {"attributes": {"userName": "grace"}})

    disabled, _ = run("std:account:disable", config, {"identity": grace})
    assert disabled[0]["attributes"]["active"] is False
    assert listing(config)[grace]["attributes"]["active"] is False
    enabled, _ = run("std:account:enable", config, {"identity": grace})
    assert enabled[0]["attributes"]["active"] is True

    updated, _ = run(
        "std:account:update",
        config,
        {"identity": grace, "changes": [
            {"op": "Set", "attribute": "displayName", "value": "Rear Admiral Hopper"},
            {"op": "Set", "attribute": "email", "value": "ghopper@example.org"},
            {"op": "Add", "attribute": "groups", "value": [g["engineering"], g["finance"]]},
            {"op": "Remove", "attribute": "groups", "value": g["admins"]},
        ]},
    )  # fmt: skip
    attrs = updated[0]["attributes"]
    assert attrs["displayName"] == "Rear Admiral Hopper" and attrs["email"] == "ghopper@example.org"
    assert sorted(attrs["groups"]) == sorted([g["engineering"], g["finance"]])
    updated, _ = run("std:account:update", config, {"identity": grace, "changes": [
        {"op": "Set", "attribute": "groups", "value": []}]})  # fmt: skip
    assert updated[0]["attributes"]["groups"] == []
    with pytest.raises(InputError, match="cannot be set"):
        run(
            "std:account:update",
            config,
            {"identity": grace, "changes": [{"op": "Set", "attribute": "x", "value": 1}]},
        )
    with pytest.raises(ObjectNotFound, match="no group"):
        run("std:account:update", config, {"identity": grace, "changes": [
            {"op": "Add", "attribute": "groups", "value": "no-such-group"}]})  # fmt: skip

    run("std:account:delete", config, {"identity": grace})
    with pytest.raises(ObjectNotFound):
        run("std:account:read", config, {"identity": grace})
    with pytest.raises(ObjectNotFound):
        run("std:account:delete", config, {"identity": grace})


def test_provisioning_needs_the_toggle(env):
    with pytest.raises(ConnectorError, match="provisioning is turned off"):
        run("std:account:create", env.config(provisioning=False), {"attributes": {"userName": "henry"}})
    assert "henry" not in {a["attributes"]["userName"] for a in listing(env.config()).values()}
