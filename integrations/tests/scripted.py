"""A connector whose output a test scripts: what it lists, where it fails, what state it saves."""

from __future__ import annotations

from connectors import registry
from connectors.sdk import Connector, Spec

SPEC = {
    "name": "scripted",
    "label": "Scripted",
    "commands": ["std:test-connection", "std:entitlement:list", "std:account:list"],
    "supportsStatefulCommands": True,
    "sourceConfig": [{"type": "section", "items": [{"key": "name", "label": "Name", "type": "text"}]}],
    "accountSchema": {
        "identityAttribute": "id",
        "displayAttribute": "id",
        "groupAttribute": "groups",
        "attributes": [
            {"name": "id", "type": "string"},
            {"name": "email", "type": "string"},
            {"name": "groups", "type": "string", "multi": True, "entitlement": True},
        ],
    },
    "entitlementSchemas": [
        {
            "type": "group",
            "identityAttribute": "id",
            "displayAttribute": "id",
            "attributes": [
                {"name": "id", "type": "string"},
                {"name": "owner", "type": "string"},
                {"name": "maintainers", "type": "string", "multi": True},
            ],
        }
    ],
}


class Script:
    """What the connector does on its next runs."""

    def __init__(self):
        self.groups: list[dict] = []  # {"id", "owner"?, "maintainers"?, "implies"?}
        self.accounts: list[dict] = []  # {"id", "email"?, "groups": [...]}
        self.fail_after: int | None = None  # raise after sending this many accounts
        self.state: object = None  # state saved by the account listing (None: none)
        self.deleted_accounts: list[str] = []  # sent with deleted: true
        self.on_account: callable = None  # called before each account is sent
        self.inputs: list[dict] = []  # inputs received


def make(script: Script) -> Connector:
    connector = Connector(Spec.from_dict(SPEC), slug="scripted")

    @connector.command("std:test-connection")
    def test(context, input, res):
        res.send({})

    @connector.command("std:entitlement:list")
    def entitlements(context, input, res):
        for g in script.groups:
            obj = {
                "identity": g["id"],
                "key": {"simple": {"id": g["id"]}},
                "type": "group",
                "attributes": {k: v for k, v in g.items() if k != "implies"},
            }
            if "implies" in g:
                obj["implies"] = g["implies"]
            res.send(obj)

    @connector.command("std:account:list")
    def accounts(context, input, res):
        script.inputs.append(dict(input))
        for n, a in enumerate(script.accounts):
            if script.fail_after is not None and n == script.fail_after:
                raise RuntimeError("the application went away halfway")
            if script.on_account:
                script.on_account(n)
            res.send({"identity": a["id"], "key": {"simple": {"id": a["id"]}}, "attributes": dict(a)})
        for identity in script.deleted_accounts:
            res.send(
                {"identity": identity, "key": {"simple": {"id": identity}}, "deleted": True, "attributes": {}}
            )
        if script.state is not None:
            res.save_state(script.state)

    return connector


def install(monkeypatch, script: Script) -> Connector:
    """Make the scripted connector the application ``scripted`` of this test."""
    registry.discover()
    connector = make(script)
    monkeypatch.setitem(registry._cache, "scripted", connector)
    return connector
