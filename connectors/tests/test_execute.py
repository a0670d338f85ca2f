"""Streaming execution: dispatch, output validation, state, filters, keep-alives, cancellation, errors."""

from __future__ import annotations

import pytest

from connectors.sdk import (
    MAX_OBJECT_BYTES,
    Cancelled,
    ConfigError,
    Connector,
    ConnectorError,
    InputError,
    OutputError,
    Spec,
    StateError,
    UnsupportedCommand,
    changes,
    one_line,
)
from connectors.sdk.connector import KEEPALIVE_EVERY_SKIPPED


def make_connector(key_type: str = "simple", stateful: bool = True) -> Connector:
    spec = Spec.from_dict(
        {
            "name": "Test app",
            "keyType": key_type,
            "supportsStatefulCommands": stateful,
            "commands": [
                "std:test-connection",
                "std:account:list",
                "std:account:read",
                "std:account:update",
                "std:entitlement:list",
            ],
            "sourceConfig": [
                {"type": "section", "items": [{"key": "n", "type": "number", "required": True}]}
            ],
            "accountSchema": {
                "identityAttribute": "id",
                "attributes": [{"name": "id"}, {"name": "dept"}, {"name": "big"}],
            },
            "entitlementSchemas": [
                {
                    "type": "group",
                    "identityAttribute": "id",
                    "attributes": [{"name": "id"}, {"name": "kind"}],
                },
                {"type": "role", "identityAttribute": "id", "attributes": [{"name": "id"}, {"name": "kind"}]},
            ],
        }
    )
    return Connector(spec, slug="testapp")


def account(i: int, dept: str = "eng", **extra) -> dict:
    return {
        "identity": f"a{i}",
        "key": {"simple": {"id": f"a{i}"}},
        "attributes": {"id": f"a{i}", "dept": dept, **extra},
    }


class Recorder:
    def __init__(self):
        self.messages: list[tuple[str, object]] = []

    def __call__(self, kind, data):
        self.messages.append((kind, data))

    @property
    def outputs(self):
        return [d for k, d in self.messages if k == "output"]

    @property
    def kinds(self):
        return [k for k, _ in self.messages]


def run(connector, command, config=None, input=None, **kwargs):
    rec = Recorder()
    result = connector.execute(command, config or {"n": 1}, input, emit=rec, **kwargs)
    return rec, result


# -- dispatch --------------------------------------------------------------------------------------------


def test_unknown_and_unregistered_commands_are_unsupported():
    c = make_connector()
    with pytest.raises(UnsupportedCommand, match="unsupported command std:x for connector testapp"):
        run(c, "std:x")
    with pytest.raises(
        UnsupportedCommand, match="unsupported command std:account:read for connector testapp"
    ):
        run(c, "std:account:read", input={"identity": "a"})  # declared, no handler
    with pytest.raises(ValueError, match="not declared"):
        c.command("std:account:delete")


def test_config_is_validated_before_the_handler_runs():
    c = make_connector()
    called = []
    c.command("std:test-connection")(lambda ctx, inp, res: called.append(1))
    with pytest.raises(ConfigError) as caught:
        run(c, "std:test-connection", {"n": "many"})
    assert caught.value.command == "std:test-connection" and caught.value.connector == "testapp"
    assert called == []


def test_context_carries_config_connector_logger_and_command():
    c = make_connector()
    seen = {}

    @c.command("std:test-connection")
    def handler(ctx, inp, res):
        seen.update(config=ctx.config, connector=ctx.connector, logger=ctx.logger.name, command=ctx.command)
        res.send({})

    rec, result = run(c, "std:test-connection", {"n": "3"})
    assert seen == {
        "config": {"n": 3},
        "connector": c,
        "logger": "connectors.testapp",
        "command": "std:test-connection",
    }
    assert rec.outputs == [{}] and result.sent == 1 and result.state is None


def test_emit_is_called_synchronously_in_order():
    c = make_connector()
    rec = Recorder()

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.send(account(1))
        assert rec.kinds == ["output"]
        res.keep_alive()
        res.send(account(2))
        assert rec.kinds == ["output", "keepAlive", "output"]

    result = c.execute("std:account:list", {"n": 1}, emit=rec)
    assert result.sent == 2 and result.keep_alives == 1


# -- output validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "ref", "field"),
    [
        ({"key": {"simple": {"id": "x"}}, "attributes": {}}, "#1", "identity"),
        ({"identity": "", "key": {"simple": {"id": "x"}}, "attributes": {}}, "#1", "identity"),
        ({"identity": "bob", "key": {"id": "bob"}, "attributes": {}}, "'bob'", "key"),
        ({"identity": "bob", "key": {"simple": {"id": 3}}, "attributes": {}}, "'bob'", "key"),
        (
            {"identity": "bob", "key": {"compound": {"lookupId": "a", "uniqueId": "b"}}, "attributes": {}},
            "'bob'",
            "key",
        ),
        ({"identity": "bob", "key": {"simple": {"id": "bob"}}, "attributes": ["x"]}, "'bob'", "attributes"),
        ({"identity": "bob", "key": {"simple": {"id": "bob"}}}, "'bob'", "attributes"),
        (account(9, big="x" * (MAX_OBJECT_BYTES + 1)), "'a9'", "size"),
        (account(9, big=object()), "'a9'", "attributes"),
    ],
)
def test_bad_account_outputs_name_object_and_field(obj, ref, field):
    c = make_connector()

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.send(account(0))
        res.send(obj)

    with pytest.raises(OutputError) as caught:
        run(c, "std:account:list")
    err = caught.value
    assert (err.object_ref, err.field) == (ref, field)
    assert str(err).startswith(f"output object {ref}: {field}")
    assert err.command == "std:account:list" and err.connector == "testapp"


def test_size_guard_is_exact_at_the_limit():
    c = make_connector()
    base = account(1, big="")
    from connectors.sdk.connector import _exact_size

    room = MAX_OBJECT_BYTES - _exact_size(base)
    padding = "é" * (room // 2) + "x" * (room % 2)  # UTF-8 bytes count, not characters
    fits, too_big = account(1, big=padding), account(1, big=padding + "x")

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.send(fits)
        res.send(too_big)

    with pytest.raises(OutputError, match=r"'a1': size is 262145 bytes, more than the 262144 allowed"):
        run(c, "std:account:list")
    assert _exact_size(fits) == MAX_OBJECT_BYTES


def test_non_dict_output_is_rejected():
    c = make_connector()
    c.command("std:test-connection")(lambda ctx, inp, res: res.send("ok"))
    with pytest.raises(OutputError, match="output object #0: must be an object, got str"):
        run(c, "std:test-connection")


def test_compound_keys_when_the_spec_says_so():
    c = make_connector("compound")
    good = {"identity": "bob", "key": {"compound": {"lookupId": "bob", "uniqueId": "42"}}, "attributes": {}}

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.send(good)
        res.send(account(1))

    with pytest.raises(OutputError, match=r"output object 'a1': key must be \{\"compound\""):
        run(c, "std:account:list")


def test_entitlement_type_must_be_declared_and_defaults_to_input_type():
    c = make_connector()

    @c.command("std:entitlement:list")
    def handler(ctx, inp, res):
        res.send({"identity": "g1", "key": {"simple": {"id": "g1"}}, "attributes": {}})
        res.send({"identity": "x", "type": "team", "key": {"simple": {"id": "x"}}, "attributes": {}})

    with pytest.raises(OutputError, match=r"'x': type must be a declared entitlement type \(group, role\)"):
        run(c, "std:entitlement:list", input={"type": "group"})
    with pytest.raises(OutputError, match="'g1': type"):
        run(c, "std:entitlement:list")  # two types declared: no default
    with pytest.raises(InputError, match="'team' is not a declared entitlement type"):
        run(c, "std:entitlement:list", input={"type": "team"})


def test_entitlement_hierarchy_fields_are_checked():
    c = make_connector()

    @c.command("std:entitlement:list")
    def handler(ctx, inp, res):
        res.send(
            {
                "identity": "g",
                "type": "group",
                "key": {"simple": {"id": "g"}},
                "attributes": {},
                "implies": "h",
            }
        )

    with pytest.raises(OutputError, match="'g': implies must be a list"):
        run(c, "std:entitlement:list")


# -- state -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["gen-1", 3, ["a"], None])
def test_state_must_be_a_dict(state):
    c = make_connector()
    c.command("std:account:list")(lambda ctx, inp, res: res.save_state(state))
    with pytest.raises(StateError, match="state must be a JSON object"):
        run(c, "std:account:list")


def test_last_saved_state_wins():
    c = make_connector()

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.save_state({"page": 1})
        res.send(account(1))
        res.save_state({"page": 2})

    _, result = run(c, "std:account:list")
    assert result.state == {"page": 2}


def test_no_state_when_the_handler_fails_halfway():
    c = make_connector()

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.save_state({"page": 1})
        res.send(account(1))
        raise RuntimeError("API returned 500")

    rec = Recorder()
    with pytest.raises(ConnectorError) as caught:
        c.execute("std:account:list", {"n": 1}, emit=rec)
    err = caught.value
    assert type(err) is ConnectorError and isinstance(err.__cause__, RuntimeError)
    assert str(err) == "std:account:list failed in connector testapp: RuntimeError: API returned 500"
    assert err.command == "std:account:list" and err.connector == "testapp"
    assert len(rec.outputs) == 1  # streamed before the failure; the caller discards them


@pytest.mark.parametrize(
    ("given", "expected"), [(True, True), ("true", True), ("TRUE", True), ("false", False)]
)
def test_stateful_accepts_bool_or_string(given, expected):
    c = make_connector()
    seen = {}

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        seen.update(ctx=ctx.stateful, input=inp["stateful"], state=ctx.state)

    run(c, "std:account:list", input={"stateful": given, "state": {"since": 5}})
    assert seen == {"ctx": expected, "input": expected, "state": {"since": 5}}


def test_stateful_is_off_when_the_spec_does_not_support_it():
    c = make_connector(stateful=False)
    seen = []
    c.command("std:account:list")(lambda ctx, inp, res: seen.append(ctx.stateful))
    run(c, "std:account:list", input={"stateful": True})
    assert seen == [False]


@pytest.mark.parametrize(
    ("input", "message"),
    [
        (["x"], "input must be a JSON object"),
        ({"stateful": "yes"}, "'stateful' must be true or false"),
        ({"stateful": True, "state": "abc"}, "'state' must be a JSON object"),
    ],
)
def test_bad_list_input(input, message):
    c = make_connector()
    c.command("std:account:list")(lambda ctx, inp, res: None)
    with pytest.raises(InputError, match=message):
        run(c, "std:account:list", input=input)


def test_identity_commands_need_an_identity():
    c = make_connector()
    c.command("std:account:read")(lambda ctx, inp, res: res.send(account(1)))
    with pytest.raises(InputError, match="std:account:read needs input 'identity'"):
        run(c, "std:account:read", input={})


def test_update_changes_are_normalised():
    c = make_connector()
    seen = []
    c.command("std:account:update")(lambda ctx, inp, res: seen.extend(changes(inp)))
    inp = {
        "identity": "a1",
        "changes": [
            {"op": "Add", "attribute": "groups", "value": "g1"},
            {"op": "Remove", "attribute": "groups", "value": ["g2", "g3"]},
            {"op": "Set", "attribute": "dept", "value": "ops"},
        ],
    }
    run(c, "std:account:update", input=inp)
    assert [(ch.op, ch.attribute, ch.values) for ch in seen] == [
        ("Add", "groups", ["g1"]),
        ("Remove", "groups", ["g2", "g3"]),
        ("Set", "dept", ["ops"]),
    ]
    assert seen[2].value == "ops"
    with pytest.raises(InputError, match=r"changes\[0\]\.op must be one of Add, Set, Remove"):
        run(
            c, "std:account:update", input={"identity": "a1", "changes": [{"op": "Append", "attribute": "x"}]}
        )


def test_a_change_applies_to_a_multi_valued_attribute():
    held = ["g1", "g2"]
    add, remove, set_ = changes(
        {
            "changes": [
                {"op": "Add", "attribute": "groups", "value": ["g2", "g3", "g3"]},
                {"op": "Remove", "attribute": "groups", "value": ["g1", "g9"]},
                {"op": "Set", "attribute": "groups", "value": ["g4", "g5", "g4"]},
            ]
        }
    )
    assert add.apply(held) == ["g1", "g2", "g3"]
    assert remove.apply(held) == ["g2"]
    assert set_.apply(held) == ["g4", "g5"]
    assert add.apply(held, ["G3"]) == ["g1", "g2", "G3"]  # values as the connector normalised them
    assert held == ["g1", "g2"]  # a new list each time


# -- filters ---------------------------------------------------------------------------------------------


def lister(n, dept_of=lambda i: "eng" if i % 3 else "sales"):
    def handler(ctx, inp, res):
        for i in range(n):
            res.send(account(i, dept_of(i)))

    return handler


def test_matching_objects_are_filtered_out():
    c = make_connector()
    c.command("std:account:list")(lister(30))
    rec, result = run(c, "std:account:list", {"n": 1, "filterString": 'dept == "sales"'})
    assert [o["identity"] for o in rec.outputs] == [f"a{i}" for i in range(30) if i % 3]
    assert (result.sent, result.filtered) == (20, 10)


def test_type_filter_and_global_filter_both_apply():
    c = make_connector()
    c.command("std:account:list")(lister(30))
    config = {"n": 1, "filterString": 'id == "a1"', "account.filterString": 'dept == "sales"'}
    rec, result = run(c, "std:account:list", config)
    assert {o["identity"] for o in rec.outputs} == {f"a{i}" for i in range(30) if i % 3 and i != 1}
    assert result.filtered == 11


def test_entitlement_filters_apply_per_type():
    c = make_connector()

    @c.command("std:entitlement:list")
    def handler(ctx, inp, res):
        for t in ("group", "role"):
            for i in range(4):
                ident = f"{t}{i}"
                res.send(
                    {
                        "identity": ident,
                        "type": t,
                        "key": {"simple": {"id": ident}},
                        "attributes": {"kind": "x"},
                    }
                )

    rec, result = run(c, "std:entitlement:list", {"n": 1, "role.filterString": 'kind == "x"'})
    assert [o["identity"] for o in rec.outputs] == ["group0", "group1", "group2", "group3"]
    assert result.filtered == 4
    rec, _ = run(c, "std:entitlement:list", {"n": 1, "account.filterString": 'dept == "x"'})
    assert len(rec.outputs) == 8  # the account filter does not touch entitlements


def test_filters_do_not_apply_to_read_commands_or_deletions():
    c = make_connector()
    c.command("std:account:read")(lambda ctx, inp, res: res.send(account(0, "sales")))

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.send({"identity": "gone", "key": {"simple": {"id": "gone"}}, "deleted": True})

    config = {"n": 1, "filterString": 'dept == "sales"'}
    rec, _ = run(c, "std:account:read", config, {"identity": "a0"})
    assert len(rec.outputs) == 1
    rec, _ = run(c, "std:account:list", config)
    assert rec.outputs[0]["deleted"] is True


def test_filter_is_compiled_once_per_command(monkeypatch):
    from connectors.sdk import filter as filter_module

    calls = []
    original = filter_module.Filter.compile

    def counting(s):
        calls.append(s)
        return original(s)

    monkeypatch.setattr(filter_module.Filter, "compile", staticmethod(counting))
    config = {"n": 1, "filterString": 'dept == "sales"'}
    counts = []
    for n in (10, 5000):
        c = make_connector()
        c.command("std:account:list")(lister(n))
        calls.clear()
        _, result = run(c, "std:account:list", config)
        assert result.filtered == len(range(0, n, 3))
        counts.append(len(calls))
    assert counts[0] == counts[1] <= 3  # validating the config and preparing the run, not per object


def test_keep_alive_during_long_skips():
    c = make_connector()
    n = KEEPALIVE_EVERY_SKIPPED * 2 + 5
    c.command("std:account:list")(lister(n, lambda i: "sales"))
    rec, result = run(c, "std:account:list", {"n": 1, "filterString": 'dept == "sales"'})
    assert rec.kinds == ["keepAlive", "keepAlive"]
    assert result.filtered == n and result.sent == 0 and result.keep_alives == 2


# -- cancellation ----------------------------------------------------------------------------------------


def test_cancellation_is_checked_every_n_sends():
    c = make_connector()
    c.command("std:account:list")(lister(100_000))
    checks = []

    def should_cancel():
        checks.append(1)
        return len(checks) >= 3

    rec = Recorder()
    with pytest.raises(Cancelled, match="std:account:list cancelled") as caught:
        c.execute("std:account:list", {"n": 1}, emit=rec, should_cancel=should_cancel)
    assert caught.value.connector == "testapp"
    assert len(rec.outputs) == 2999  # cancelled on the 3000th send, before it is emitted


def test_cancellation_is_checked_at_keep_alives():
    c = make_connector()

    @c.command("std:account:list")
    def handler(ctx, inp, res):
        res.keep_alive()
        raise AssertionError("not reached")

    with pytest.raises(Cancelled):
        run(c, "std:account:list", should_cancel=lambda: True)


def test_one_line_folds_white_space_and_hides_secrets():
    exc = OSError("FATAL:  password  for s3cret\n  rejected\t(s3cret)")
    assert one_line(exc, None, "s3cret") == "FATAL: password for *** rejected (***)"
    assert one_line("pw  ab", "", "ab", "b") == "pw ab"  # secrets shorter than three characters stay
    assert one_line(None) == "None"
