"""The demo connector: a synthetic organisation (see ``README.md`` next to this file)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from connectors.sdk import (
    ConfigError,
    Connector,
    ConnectorError,
    InputError,
    ObjectNotFound,
    apply_changes,
    changes,
)
from connectors.sdk.config import config_int

from .org import Organisation, OrgSettings

connector = Connector(Path(__file__).parent)

DEMO_HOST = "demo.example.com"
DEMO_TOKEN = "demo"
DEMO_USER, DEMO_PASSWORD = "admin", "demo"
OVERLAY_FILE = "demo-directory.json"


def settings(config: dict[str, Any]) -> OrgSettings:
    mutation = config.get("mutation") or 0
    if not isinstance(mutation, (int, float)) or isinstance(mutation, bool) or not 0 <= mutation <= 1:
        raise ConfigError(
            f"config item 'mutation' must be a fraction between 0 and 1, got {mutation!r}", item="mutation"
        )
    return OrgSettings(
        users=config_int(config, "users", 100, 0, 10_000_000),
        groups=config_int(config, "groups", 20, 0, 1_000_000),
        memberships=config_int(config, "memberships", 3, 0, 1000),
        seed=config_int(config, "seed", 0, 0, 2**31 - 1),
        mutation=float(mutation),
    )


def connect(config: dict[str, Any]) -> None:
    """Check the directory URL and the credentials, as a real connector's login would."""
    host = urlsplit(config["url"]).hostname or ""
    if host != DEMO_HOST:
        raise ConnectorError(f"cannot reach the demo directory at {config['url']}: unknown host {host!r}")
    if config.get("connectionOption") == "password":
        if config.get("username") != DEMO_USER or config.get("password") != DEMO_PASSWORD:
            raise ConnectorError("authentication failed: wrong username or password")
    elif config.get("apiToken") != DEMO_TOKEN:
        raise ConnectorError("authentication failed: invalid API token")


def organisation(context) -> Organisation:
    connect(context.config)
    return Organisation(settings(context.config))


def _generation(context, input: dict[str, Any]) -> int:
    """The generation a full run shows: the input state's, else the ``generation`` config item."""
    state = input.get("state") or {}
    if "generation" in state:
        value = state["generation"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(f"state 'generation' must be a whole number ≥ 0, got {value!r}")
        return value
    return config_int(context.config, "generation", 0, 0, 1_000_000)


# -- provisioning overlay -----------------------------------------------------------------------------


class Overlay:
    """Provisioning changes kept in ``<dataDir>/demo-directory.json`` on top of the generated organisation."""

    def __init__(self, config: dict[str, Any], *, required: bool):
        data_dir = config.get("dataDir")
        if not data_dir:
            if required:
                raise ConnectorError(
                    "provisioning needs the dataDir config item (a folder to keep changes in)"
                )
            self.path = None
            self.accounts: dict[str, dict[str, Any]] = {}
            self.deleted: set[str] = set()
            return
        self.path = Path(data_dir) / OVERLAY_FILE
        try:
            data = json.loads(self.path.read_text("utf-8")) if self.path.exists() else {}
        except (OSError, ValueError) as exc:
            raise ConnectorError(f"cannot read {self.path}: {exc}") from exc
        self.accounts = data.get("accounts", {})
        self.deleted = set(data.get("deleted", []))

    def __bool__(self) -> bool:
        return bool(self.accounts or self.deleted)

    def save(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"accounts": self.accounts, "deleted": sorted(self.deleted)}
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".demo-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1, sort_keys=True)
        os.replace(tmp, self.path)


def _obj(identity: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"identity": identity, "key": {"simple": {"id": identity}}, "attributes": attributes}


def _find_account(context, input: dict[str, Any], overlay: Overlay) -> dict[str, Any]:
    identity = input["identity"]
    if identity in overlay.accounts:
        return _obj(identity, dict(overlay.accounts[identity]))
    org = organisation(context)
    i = org.account_index(identity)
    obj = None if i is None or identity in overlay.deleted else org.account(i, _generation(context, {}))
    if obj is None:
        raise ObjectNotFound(f"no account {identity!r} in the demo directory")
    return obj


# -- handlers -----------------------------------------------------------------------------------------


@connector.command("std:test-connection")
def test_connection(context, input, res):
    connect(context.config)
    settings(context.config)
    res.send({})


@connector.command("std:account:list")
def account_list(context, input, res):
    org = organisation(context)
    overlay = Overlay(context.config, required=False)
    state = input.get("state") or {}
    if context.stateful and "generation" in state:
        generation = _generation(context, input)
        for obj in org.delta(generation):
            res.send(obj)
        res.save_state({"generation": generation + 1})
        return
    generation = _generation(context, input)
    send = res.send
    if not overlay:
        for obj in org.accounts(generation):
            send(obj)
    else:
        for obj in org.accounts(generation):
            identity = obj["identity"]
            if identity in overlay.deleted or identity in overlay.accounts:
                continue
            send(obj)
        for identity, attributes in sorted(overlay.accounts.items()):
            send(_obj(identity, dict(attributes)))
    res.save_state({"generation": generation})


@connector.command("std:account:read")
def account_read(context, input, res):
    res.send(_find_account(context, input, Overlay(context.config, required=False)))


@connector.command("std:account:create")
def account_create(context, input, res):
    organisation(context)
    overlay = Overlay(context.config, required=True)
    attributes = dict(input.get("attributes") or {})
    identity = input.get("identity") or attributes.get("id") or attributes.get("userName")
    if not isinstance(identity, str) or not identity:
        raise InputError("std:account:create needs an identity, or an 'id' or 'userName' attribute")
    if identity in overlay.accounts:
        raise ConnectorError(f"account {identity!r} already exists")
    attributes.setdefault("id", identity)
    attributes.setdefault("userName", identity)
    attributes.setdefault("displayName", attributes["userName"])
    attributes.setdefault("enabled", True)
    groups = attributes.get("groups")
    attributes["groups"] = [groups] if isinstance(groups, str) else list(groups or [])
    overlay.accounts[identity] = attributes
    overlay.deleted.discard(identity)
    overlay.save()
    res.send(_obj(identity, attributes))


def _modify(context, input, res, edit) -> None:
    overlay = Overlay(context.config, required=True)
    obj = _find_account(context, input, overlay)
    edit(obj["attributes"])
    overlay.accounts[obj["identity"]] = obj["attributes"]
    overlay.save()
    res.send(obj)


@connector.command("std:account:update")
def account_update(context, input, res):
    todo = changes(input)
    org = organisation(context)
    for change in todo:
        if change.attribute == "groups" and change.op in ("Add", "Set"):
            unknown = [v for v in change.values if org.find_entitlement(str(v)) is None]
            if unknown:
                raise ObjectNotFound(f"no entitlement {unknown[0]!r} in the demo directory")
    _modify(context, input, res, lambda attributes: apply_changes(attributes, todo))


@connector.command("std:account:enable")
def account_enable(context, input, res):
    _modify(context, input, res, lambda attributes: attributes.__setitem__("enabled", True))


@connector.command("std:account:disable")
def account_disable(context, input, res):
    _modify(context, input, res, lambda attributes: attributes.__setitem__("enabled", False))


@connector.command("std:account:delete")
def account_delete(context, input, res):
    overlay = Overlay(context.config, required=True)
    obj = _find_account(context, input, overlay)
    overlay.accounts.pop(obj["identity"], None)
    overlay.deleted.add(obj["identity"])
    overlay.save()
    res.send({})


@connector.command("std:account:discover-schema")
def discover_schema(context, input, res):
    connect(context.config)
    schema = context.spec.raw["accountSchema"]
    res.send(
        {
            key: schema[key]
            for key in ("displayAttribute", "identityAttribute", "groupAttribute", "attributes")
        }
    )


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    org = organisation(context)
    state = input.get("state") or {}
    generation = _generation(context, input)
    if not (context.stateful and "generation" in state):
        for obj in org.entitlements():
            res.send(obj)
    res.save_state({"generation": generation})


@connector.command("std:entitlement:read")
def entitlement_read(context, input, res):
    obj = organisation(context).find_entitlement(input["identity"])
    if obj is None:
        raise ObjectNotFound(f"no entitlement {input['identity']!r} in the demo directory")
    res.send(obj)
