"""The demo connector: determinism, generations and deltas, laziness, provisioning."""

from __future__ import annotations

import inspect
import json
import tracemalloc

import pytest

from connectors.demo import org as org_module
from connectors.demo.connector import connector as demo
from connectors.sdk import ConnectorError, InputError, ObjectNotFound

BASE = {"url": "https://demo.example.com", "apiToken": "demo", "users": 300, "groups": 12, "seed": 5}


def full(config, generation=None):
    input = {} if generation is None else {"state": {"generation": generation}}
    outputs, result = demo.invoke("std:account:list", config, input)
    return {o["identity"]: o for o in outputs}, result


def delta(config, generation):
    outputs, result = demo.invoke(
        "std:account:list", config, {"stateful": True, "state": {"generation": generation}}
    )
    return outputs, result


def test_same_config_same_organisation_other_seed_other_organisation():
    a, _ = full(BASE)
    b, _ = full(dict(BASE))
    c, _ = full({**BASE, "seed": 6})
    assert a == b
    assert len(a) == len(c) == 300
    assert sum(a[k]["attributes"] != c[k]["attributes"] for k in a) > 250


def test_realistic_and_consistent_people():
    accounts, _ = full(BASE)
    departments = {a["attributes"]["department"] for a in accounts.values()}
    assert len(departments) >= 8
    for a in accounts.values():
        attrs = a["attributes"]
        assert attrs["displayName"] == f"{attrs['firstName']} {attrs['lastName']}"
        assert attrs["email"] == f"{attrs['userName']}@example.com"
        titles = dict(org_module.DEPARTMENTS)[attrs["department"]]
        assert attrs["title"] in titles
        assert len(attrs["groups"]) == len(set(attrs["groups"])) == 3
        manager = attrs["manager"]
        assert manager is None or manager in accounts


@pytest.mark.parametrize("mutation", [0.01, 0.1, 0.5])
@pytest.mark.parametrize("generation", [0, 1, 7])
def test_full_plus_delta_is_next_full(mutation, generation):
    config = {**BASE, "mutation": mutation}
    before, before_result = full(config, generation)
    changes, result = delta(config, generation)
    after, _ = full(config, generation + 1)
    assert before_result.state == {"generation": generation}
    assert result.state == {"generation": generation + 1}
    applied = dict(before)
    for obj in changes:
        if obj.get("deleted"):
            assert applied.pop(obj["identity"], None) is not None, "deleted an account that did not exist"
        else:
            applied[obj["identity"]] = obj
    assert applied == after
    churn = max(1, round(300 * mutation / 4))
    assert sum(1 for o in changes if o.get("deleted")) == churn
    assert len(set(after) - set(before)) == churn
    changed = [o for o in changes if not o.get("deleted") and o["identity"] in before]
    assert changed and any(o != before[o["identity"]] for o in changed)
    assert len(changes) < len(before)


def test_no_mutation_means_no_changes_and_full_run_uses_generation_item():
    changes, result = delta(BASE, 4)
    assert changes == [] and result.state == {"generation": 5}
    config = {**BASE, "mutation": 0.1, "generation": 2}
    from_item, _ = full(config)
    from_state, _ = full({**BASE, "mutation": 0.1}, 2)
    assert from_item == from_state


def test_accounts_hold_listed_entitlements_with_a_role_mix():
    accounts, _ = full(BASE)
    ents, _ = demo.invoke("std:entitlement:list", BASE)
    ids = {e["identity"] for e in ents}
    assert len(ids) == 12 * 3
    held = [g for a in accounts.values() for g in demo.spec.account_entitlements(a)]
    assert set(held) <= ids
    roles = {g.rsplit("-", 1)[1] for g in held}
    assert roles == {"admins", "members", "viewers"}


def test_generation_is_lazy_and_memory_is_flat():
    organisation = org_module.Organisation(org_module.OrgSettings(users=50_000, groups=100))
    assert inspect.isgenerator(organisation.accounts(0))
    tracemalloc.start()
    count = 0
    for _ in organisation.accounts(0):
        count += 1
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 50_000
    assert peak < 2_000_000  # a list of 50k accounts would take well over 100 MB


def test_read_and_entitlement_read():
    accounts, _ = full(BASE)
    one = accounts["u0000042"]
    read, _ = demo.invoke("std:account:read", BASE, {"identity": "u0000042"})
    assert read == [one]
    with pytest.raises(ObjectNotFound, match="no account 'u9999999'"):
        demo.invoke("std:account:read", BASE, {"identity": "u9999999"})
    ent = one["attributes"]["groups"][0]
    read, _ = demo.invoke("std:entitlement:read", BASE, {"identity": ent})
    assert read[0]["identity"] == ent and read[0]["type"] == "group"
    with pytest.raises(ObjectNotFound):
        demo.invoke("std:entitlement:read", BASE, {"identity": "nope-prod-admins"})


def test_provisioning_without_data_dir_is_refused_clearly():
    with pytest.raises(ConnectorError, match="provisioning needs the dataDir config item"):
        demo.invoke("std:account:create", BASE, {"identity": "new.person", "attributes": {}})


def test_provisioning_changes_show_in_listings(tmp_path):
    config = {**BASE, "dataDir": str(tmp_path)}
    demo.invoke("std:account:create", config, {"identity": "new.person", "attributes": {"groups": "x"}})
    demo.invoke("std:account:disable", config, {"identity": "u0000001"})
    demo.invoke("std:account:delete", config, {"identity": "u0000002"})
    accounts, _ = full(config)
    assert accounts["new.person"]["attributes"]["groups"] == ["x"]
    assert accounts["u0000001"]["attributes"]["enabled"] is False
    assert "u0000002" not in accounts and len(accounts) == 300
    stored = json.loads((tmp_path / "demo-directory.json").read_text())
    assert stored["deleted"] == ["u0000002"]
    with pytest.raises(ObjectNotFound, match="no entitlement 'bogus'"):
        demo.invoke(
            "std:account:update",
            config,
            {"identity": "u0000003", "changes": [{"op": "Add", "attribute": "groups", "value": "bogus"}]},
        )


def test_bad_state_and_settings():
    with pytest.raises(InputError, match="state 'generation' must be a whole number"):
        full(BASE, "three")
    with pytest.raises(ConnectorError, match="'mutation' .* must be from 0 to 1"):
        full({**BASE, "mutation": 2})
    with pytest.raises(ConnectorError, match="'users' .*must be from 0 to 10000000"):
        full({**BASE, "users": -1})
