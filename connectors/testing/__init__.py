"""The acceptance suite every connector passes.

Subclass :class:`ConnectorAcceptanceSuite` in the connector's test module (the class name must start
with ``Test`` so pytest collects it) and provide the fixtures::

    from connectors.testing import ConnectorAcceptanceSuite

    class TestMyConnector(ConnectorAcceptanceSuite):
        @pytest.fixture
        def connector(self):
            return my_connector                      # a connectors.sdk.Connector

        @pytest.fixture
        def good_config(self):
            return {"host": "...", "password": {"$env": "MY_PASSWORD"}}

        @pytest.fixture
        def bad_configs(self, good_config):          # name -> config that must fail test-connection
            return {
                "wrong password": {**good_config, "password": "nope"},
                "wrong host": {**good_config, "host": "nowhere.invalid"},
            }

        @pytest.fixture
        def new_account(self):                       # optional: input of std:account:create
            return {"identity": "acceptance-user", "attributes": {...}}

The good config should describe a small source: every list command is run several times in full.

A connector's own tests against a real server use the helpers below: :func:`connection_error` (the one-line
message of a failing ``std:test-connection``), :func:`assert_connection_errors` (a good config connects and
each bad one fails with exactly its message), :func:`free_port`, :func:`make_certificates` and
:func:`stop_process` (for private server instances).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from connectors.sdk import Connector, ConnectorError, Filter, Result

ACCOUNT_TYPE = "account"

_JSON_TYPES = {
    "string": (str,),
    "boolean": (bool,),
    "int": (int,),
    "long": (int,),
    "integer": (int,),
    "number": (int, float),
    "double": (int, float),
}


def run(
    connector: Connector, command: str, config: dict, input: dict | None = None
) -> tuple[list[Any], Result]:
    """Run a command; return its outputs and :class:`Result`."""
    return connector.invoke(command, config, input)


def key_of(obj: dict) -> str:
    """A hashable form of an output object's key (plus its entitlement type)."""
    return json.dumps([obj.get("type"), obj["key"]], sort_keys=True)


def by_key(objects: Iterable[dict]) -> dict[str, dict]:
    return {key_of(o): o for o in objects}


def list_targets(connector: Connector) -> list[tuple[str, str, dict]]:
    """``(object type, command, input)`` for every list the connector supports."""
    targets = []
    if connector.supports("std:account:list"):
        targets.append((ACCOUNT_TYPE, "std:account:list", {}))
    if connector.supports("std:entitlement:list"):
        for ent_type in connector.spec.entitlement_types:
            targets.append((ent_type, "std:entitlement:list", {"type": ent_type}))
    return targets


# -- helpers for a connector's tests against a real server ------------------------------------------------


def connection_error(connector: Connector, config: dict, *, secrets: Iterable[str] = ()) -> str:
    """The message of a ``std:test-connection`` that must fail: checked to be one clear line that shows
    none of ``secrets``."""
    with pytest.raises(ConnectorError) as caught:
        run(connector, "std:test-connection", config)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message and len(message) < 500, (
        f"unclear error {message!r}"
    )
    shown = [secret for secret in secrets if secret in message]
    assert not shown, f"the error message shows a secret: {message!r}"
    return message


def assert_connection_errors(
    connector: Connector,
    good_config: dict,
    cases: Mapping[str, tuple[dict, str]],
    *,
    secrets: Iterable[str] = (),
) -> None:
    """``good_config`` connects, and the config of each case (name -> ``(config, message)``) fails
    ``std:test-connection`` with exactly that message (see :func:`connection_error`). Every case runs; a
    failure names each case that went wrong."""
    outputs, _ = run(connector, "std:test-connection", good_config)
    assert outputs == [{}], f"the good config did not connect cleanly: {outputs!r}"
    secrets = tuple(secrets)
    wrong = []
    for name, (config, expected) in cases.items():
        try:
            message = connection_error(connector, config, secrets=secrets)
        except (AssertionError, pytest.fail.Exception) as exc:
            wrong.append(f"{name}: {str(exc).splitlines()[0]}")
            continue
        if message != expected:
            wrong.append(f"{name}: got {message!r}, expected {expected!r}")
    assert not wrong, "connection errors differ:\n" + "\n".join(wrong)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now: for a private server, or for a config that must be refused."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 5) -> None:
    """Stop a private server: SIGTERM, then SIGKILL when it has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)


def make_certificates(folder: Path, *, san: str = "DNS:localhost") -> None:
    """In ``folder``: a CA (``ca.crt``, ``ca.key``), a server certificate for ``/CN=localhost`` with the
    subject alternative names ``san`` signed by it (``server.crt``, ``server.key``, readable by its owner
    only), and an unrelated second CA (``other-ca.crt``). Needs the ``openssl`` command."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=Test {ca}",
                "-keyout", f"{ca}.key", "-out", f"{ca}.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (folder / "san.ext").write_text(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip
    os.chmod(folder / "server.key", 0o600)


def _filter_literal(value: str) -> str:
    return json.dumps(value)


class ConnectorAcceptanceSuite:
    """Behaviour every connector must have. See the module docstring for the fixtures to provide."""

    # -- fixtures to override --------------------------------------------------------------------------

    @pytest.fixture
    def connector(self) -> Connector:
        pytest.fail("the acceptance suite needs a `connector` fixture")

    @pytest.fixture
    def good_config(self) -> dict:
        pytest.fail("the acceptance suite needs a `good_config` fixture")

    @pytest.fixture
    def bad_configs(self) -> dict[str, dict]:
        pytest.fail("the acceptance suite needs a `bad_configs` fixture (name -> config)")

    @pytest.fixture
    def new_account(self) -> dict | None:
        """Input of ``std:account:create`` for the provisioning round trip; ``None`` skips it."""
        return None

    # -- spec ------------------------------------------------------------------------------------------

    def test_spec_is_valid(self, connector: Connector, good_config: dict) -> None:
        spec = connector.spec
        assert spec.name and spec.commands
        assert "std:test-connection" in spec.commands, "every connector supports std:test-connection"
        missing = [c for c in spec.commands if c not in connector.handlers]
        assert not missing, f"commands declared in the spec without a handler: {missing}"
        account = spec.account_schema
        names = account.attribute_names
        assert account.identity_attribute in names, "accountSchema.identityAttribute is not an attribute"
        if account.group_attribute:
            assert account.group_attribute in names, "accountSchema.groupAttribute is not an attribute"
        for ent in spec.entitlement_schemas.values():
            assert ent.identity_attribute in ent.attribute_names, (
                f"{ent.type}: identityAttribute not declared"
            )
        if spec.example_config:
            connector.validate_config(spec.example_config)
        connector.validate_config(good_config)

    # -- connection ------------------------------------------------------------------------------------

    def test_good_config_connects(self, connector: Connector, good_config: dict) -> None:
        outputs, _ = run(connector, "std:test-connection", good_config)
        assert len(outputs) <= 1

    def test_bad_configs_fail_clearly(self, connector: Connector, bad_configs: dict[str, dict]) -> None:
        assert bad_configs, "provide at least one bad config (wrong password, wrong host...)"
        for name, config in bad_configs.items():
            with pytest.raises(ConnectorError) as caught:
                run(connector, "std:test-connection", config)
            message = str(caught.value)
            assert message.strip(), f"{name}: empty error message"
            assert "\n" not in message.strip(), f"{name}: the error message is not one line: {message!r}"
            assert "Traceback" not in message and len(message) < 500, f"{name}: unclear error {message!r}"

    # -- listing ---------------------------------------------------------------------------------------

    def test_lists_stream_schema_valid_objects_with_unique_keys(
        self, connector: Connector, good_config: dict
    ) -> None:
        spec = connector.spec
        assert list_targets(connector), "the connector lists nothing"
        entitlement_ids: set[str] = set()
        accounts: list[dict] = []
        for object_type, command, input in list_targets(connector):
            outputs, result = run(connector, command, good_config, input)
            assert result.sent == len(outputs)
            keys = [key_of(o) for o in outputs]
            assert len(set(keys)) == len(keys), f"{object_type}: duplicate keys in one listing"
            identities = [o["identity"] for o in outputs]
            assert len(set(identities)) == len(identities), f"{object_type}: duplicate identities"
            if object_type == ACCOUNT_TYPE:
                schema_attrs = {a.name: a for a in spec.account_schema.attributes}
                accounts = outputs
            else:
                schema_attrs = {a.name: a for a in spec.entitlement_schemas[object_type].attributes}
                entitlement_ids.update(identities)
            custom = bool(spec.raw.get("supportsCustomSchemas"))
            for obj in outputs:
                assert obj.get("deleted") is not True, "a full listing must not report deletions"
                for name, value in obj["attributes"].items():
                    attr = schema_attrs.get(name)
                    if attr is None:
                        assert custom, (
                            f"{object_type} {obj['identity']!r}: attribute {name!r} not in the schema"
                        )
                        continue
                    self._check_value(object_type, obj["identity"], attr, value)
                if object_type != ACCOUNT_TYPE:
                    mapping = spec.map_entitlement(obj)
                    assert mapping.resource_id and mapping.role_id
        if accounts and entitlement_ids:
            held = {e for a in accounts for e in spec.account_entitlements(a)}
            unknown = held - entitlement_ids
            assert not unknown, f"accounts hold entitlements that are not listed: {sorted(unknown)[:5]}"

    @staticmethod
    def _check_value(object_type: str, identity: str, attr: Any, value: Any) -> None:
        if value is None:
            return
        where = f"{object_type} {identity!r} attribute {attr.name!r}"
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list):
            assert attr.multi, f"{where}: a list in a single-valued attribute"
        expected = _JSON_TYPES.get(attr.type)
        if expected:
            for v in values:
                ok = isinstance(v, expected) and not (bool not in expected and isinstance(v, bool))
                assert ok, f"{where}: {v!r} is not of type {attr.type}"

    def test_two_full_runs_give_the_same_objects(self, connector: Connector, good_config: dict) -> None:
        for object_type, command, input in list_targets(connector):
            first, _ = run(connector, command, good_config, input)
            second, _ = run(connector, command, good_config, input)
            assert by_key(first) == by_key(second), f"{object_type}: two full runs differ"

    def test_stateful_run_after_full_run_reports_no_changes(
        self, connector: Connector, good_config: dict
    ) -> None:
        if not connector.spec.supports_stateful:
            pytest.skip("the connector does not support stateful commands")
        for object_type, command, input in list_targets(connector):
            full, result = run(connector, command, good_config, {**input, "stateful": True})
            assert result.state is not None, f"{object_type}: a stateful full run saved no state"
            delta, _ = run(
                connector, command, good_config, {**input, "stateful": True, "state": result.state}
            )
            previous = by_key(full)
            changed = [o for o in delta if previous.get(key_of(o)) != o]
            assert not changed, f"{object_type}: a stateful run right after a full run reported {changed[:3]}"

    # -- filters ---------------------------------------------------------------------------------------

    def test_filters_exclude_exactly_the_matching_objects(
        self, connector: Connector, good_config: dict
    ) -> None:
        tried = 0
        for object_type, command, input in list_targets(connector):
            full, _ = run(connector, command, good_config, input)
            picked = self._pick_value(full)
            if picked is None:
                continue
            name, value = picked
            expression = f"{name} == {_filter_literal(value)}"
            expected = {k for k, o in by_key(full).items() if o["attributes"].get(name) != value}
            assert len(expected) < len(full)
            for key in ("filterString", f"{object_type}.filterString"):
                outputs, result = run(connector, command, {**good_config, key: expression}, input)
                assert set(by_key(outputs)) == expected, (
                    f"{object_type}: {key} {expression!r} excluded the wrong objects"
                )
                assert result.filtered == len(full) - len(expected)
                assert not any(Filter(o["attributes"]).matcher(expression) for o in outputs)
            tried += 1
        if not tried:
            pytest.skip("no listing has a string attribute to filter on")

    @staticmethod
    def _pick_value(objects: list[dict]) -> tuple[str, str] | None:
        """A string attribute value held by some but not all objects (else by all), from the listing."""
        fallback = None
        for obj in objects:
            for name, value in obj["attributes"].items():
                if not isinstance(value, str) or not value or not name.isidentifier():
                    continue
                count = sum(1 for o in objects if o["attributes"].get(name) == value)
                if count < len(objects):
                    return name, value
                fallback = fallback or (name, value)
        return fallback if fallback and len(objects) > 0 else None

    # -- provisioning ----------------------------------------------------------------------------------

    def test_provisioning_round_trip(
        self, connector: Connector, good_config: dict, new_account: dict | None
    ) -> None:
        needed = ("std:account:create", "std:account:read", "std:account:update", "std:account:delete")
        if new_account is None or not all(connector.supports(c) for c in needed):
            pytest.skip("the connector does not provision accounts (or no new_account fixture)")
        spec = connector.spec
        created, _ = run(connector, "std:account:create", good_config, new_account)
        assert len(created) == 1
        identity = created[0]["identity"]
        key = created[0]["key"]
        read, _ = run(connector, "std:account:read", good_config, {"identity": identity, "key": key})
        assert read[0]["identity"] == identity

        group = spec.account_schema.group_attribute
        if group and connector.supports("std:entitlement:list") and spec.entitlement_types:
            ent_type = spec.entitlement_types[0]
            ents, _ = run(connector, "std:entitlement:list", good_config, {"type": ent_type})
            assert ents, "no entitlement to grant"
            grant = ents[0]["identity"]
            change = {
                "identity": identity,
                "key": key,
                "changes": [{"op": "Add", "attribute": group, "value": grant}],
            }
            run(connector, "std:account:update", good_config, change)
            read, _ = run(connector, "std:account:read", good_config, {"identity": identity, "key": key})
            assert grant in spec.account_entitlements(read[0]), "a granted entitlement does not show on read"
            change["changes"][0]["op"] = "Remove"
            run(connector, "std:account:update", good_config, change)
            read, _ = run(connector, "std:account:read", good_config, {"identity": identity, "key": key})
            assert grant not in spec.account_entitlements(read[0]), (
                "a revoked entitlement still shows on read"
            )

        run(connector, "std:account:delete", good_config, {"identity": identity, "key": key})
        with pytest.raises(ConnectorError):
            run(connector, "std:account:read", good_config, {"identity": identity, "key": key})
