"""Spec loading over the public ISC corpus, portal extensions and the hierarchy mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.demo.connector import connector as demo
from connectors.sdk import Spec, SpecError, load_spec

BROKEN = "fernando-delosrios__NonEmployeeRiskManagement.json"


def corpus(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.json") if p.name != BROKEN)


def test_every_valid_isc_spec_loads(isc_specs_dir):
    files = corpus(isc_specs_dir)
    assert len(files) == 15
    for path in files:
        spec = load_spec(path)
        raw = json.loads(path.read_text("utf-8"))
        assert spec.name == raw["name"]
        assert spec.commands == tuple(raw["commands"])
        assert spec.entitlement_types == [e["type"] for e in raw["entitlementSchemas"]]
        assert spec.key_type == raw.get("keyType", "simple")
        assert all(item.key for item in spec.config_items)


@pytest.mark.parametrize(
    ("name", "key_type", "stateful", "entitlement_types", "secret_keys"),
    [
        (
            "sailpoint-oss__airtable-example-connector.json",
            "simple",
            False,
            ["group"],
            ["apiKey", "airtableBase"],
        ),
        ("sailpoint-oss__colab-saas-conn-attribute-generator.json", "simple", True, [], ["clientSecret"]),
        ("mostafa-helmy-sp__isc-role-policy-analyser.json", "simple", True, [], ["clientSecret"]),
        (
            "Keeper-Security__sailpoint-saas-connector.json",
            "simple",
            False,
            ["node", "team", "role", "folder", "record"],
            ["serviceModeApiKey"],
        ),
        (
            "sailpoint-oss__colab-saas-conn-cyber-ark-rbac.json",
            "simple",
            False,
            ["group", "safeRole", "safeRight"],
            ["clientSecret"],
        ),
        ("rmadabhushi__okta-custom-connector.json", "simple", False, ["group"], ["token"]),
        ("sailpoint-oss__saas-conn-discourse.json", "simple", False, ["group"], []),
        (
            "sailpoint-oss__colab-saas-conn-sailpoint-identity-fusion.json",
            "simple",
            False,
            ["status", "action"],
            ["clientSecret", "proxyPassword"],
        ),
    ],
)
def test_isc_spec_details(isc_specs_dir, name, key_type, stateful, entitlement_types, secret_keys):
    spec = load_spec(isc_specs_dir / name)
    assert spec.key_type == key_type
    assert spec.supports_stateful is stateful
    assert spec.entitlement_types == entitlement_types
    assert spec.secret_keys == secret_keys


def test_broken_spec_names_file_line_and_column(isc_specs_dir):
    with pytest.raises(SpecError) as caught:
        load_spec(isc_specs_dir / BROKEN)
    err = caught.value
    assert err.line == 28 and err.column == 1
    assert BROKEN in str(err) and "line 28" in str(err) and "merge-conflict" in str(err)


def test_menu_and_top_level_sections_are_walked(isc_specs_dir):
    clear_id = load_spec(isc_specs_dir / "fernando-delosrios__ClearID.json")  # sections, no menu
    assert [i.key for i in clear_id.config_items][:4] == [
        "environment",
        "accountId",
        "clientId",
        "clientSecret",
    ]
    assert clear_id.config_item("environment").options == ("production", "europe", "development")
    assert clear_id.config_item("provisioningAttributes").section == "Provisioning attributes configuration"
    fusion = load_spec(isc_specs_dir / "sailpoint-oss__colab-saas-conn-sailpoint-identity-fusion.json")
    assert len(fusion.config_items) > 30
    assert len({i.menu for i in fusion.config_items}) == 6


def test_card_list_keeps_its_sub_menu_items(isc_specs_dir):
    spec = load_spec(isc_specs_dir / "sailpoint-oss__colab-saas-conn-attribute-generator.json")
    cards = spec.config_item("attributes")
    assert cards.type == "cardList"
    assert [c.key for c in cards.children] == [
        "name",
        "expression",
        "case",
        "type",
        "digits",
        "normalize",
        "spaces",
        "refresh",
    ]
    assert cards.children[4].parent_key == "type" and cards.children[4].parent_value == "counter"


def test_non_standard_things_are_warnings(isc_specs_dir):
    okta = load_spec(isc_specs_dir / "rmadabhushi__okta-custom-connector.json")
    assert okta.config_item("token").is_secret
    assert any("'password'" in w for w in okta.warnings)
    crowdstrike = load_spec(isc_specs_dir / "sailpoint-oss__colab-saas-conn-crowdstrike.json")
    assert crowdstrike.account_schema.attribute_names.count("riskScore") == 1
    assert any("duplicate attribute 'riskScore'" in w for w in crowdstrike.warnings)
    airtable = load_spec(isc_specs_dir / "sailpoint-oss__airtable-example-connector.json")
    assert airtable.warnings == []


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"commands": []}, "'name' is a required property"),
        ({"name": "x", "commands": "std:account:list"}, "$.commands"),
        ({"name": "x", "commands": [], "keyType": "weird"}, "$.keyType"),
        ({"name": "x", "commands": [], "entitlementSchemas": [{"attributes": []}]}, "'type' is a required"),
        ({"name": "x", "commands": [], "sourceConfig": [{"type": "section", "items": [{"key": 3}]}]}, "key"),
        ([], "is not of type 'object'"),
    ],
)
def test_structural_errors(data, message):
    with pytest.raises(SpecError) as caught:
        Spec.from_dict(data, path="spec.json")
    assert message in str(caught.value) and str(caught.value).startswith("spec.json: ")


def test_unreadable_and_non_utf8_specs(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.json")
    bad = tmp_path / "connector-spec.json"
    bad.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(tmp_path)


def test_connection_option_must_name_declared_items():
    data = {"name": "x", "commands": [], "connectionOptions": [{"key": "a", "label": "A", "items": ["nope"]}]}
    with pytest.raises(SpecError, match="undeclared config items"):
        Spec.from_dict(data)


def test_portal_extensions_of_the_demo_spec():
    spec = demo.spec
    assert spec.label == "Demo organisation" and spec.name == "demo"
    assert spec.icon is not None and spec.icon.name == "icon.svg" and spec.icon.read_text().startswith("<svg")
    assert spec.docs is not None and Path(spec.docs).name == "README.md"
    assert [o.key for o in spec.connection_options] == ["token", "password"]
    assert spec.connection_options[1].items == ("url", "username", "password")
    assert spec.example_config["users"] == 1000
    assert spec.secret_keys == ["apiToken", "password"]
    assert spec.supports_stateful and spec.entitlement_types == ["group"]


def test_missing_icon_file_is_a_warning(tmp_path):
    (tmp_path / "connector-spec.json").write_text(
        json.dumps({"name": "x", "commands": [], "icon": "logo.png"})
    )
    spec = load_spec(tmp_path)
    assert spec.icon is None and any("logo.png" in w for w in spec.warnings)


# -- hierarchy -----------------------------------------------------------------------------------------

SPEC = {
    "name": "h",
    "commands": ["std:test-connection"],
    "accountSchema": {
        "identityAttribute": "id",
        "groupAttribute": "groups",
        "attributes": [
            {"name": "id", "type": "string"},
            {"name": "groups", "type": "string", "multi": True, "entitlement": True},
            {
                "name": "roles",
                "type": "string",
                "multi": True,
                "entitlement": True,
                "schemaObjectType": "role",
            },
        ],
    },
    "entitlementSchemas": [
        {"type": "group", "identityAttribute": "id", "displayAttribute": "name", "attributes": []},
        {
            "type": "role",
            "identityAttribute": "id",
            "attributes": [],
            "hierarchy": {
                "resourceIdAttribute": "db",
                "resourceKind": "database",
                "roleIdAttribute": "privilege",
                "impliesAttribute": "inherits",
            },
        },
    ],
}


def test_entitlement_without_hierarchy_is_its_own_resource_with_member_role():
    spec = Spec.from_dict(SPEC)
    m = spec.map_entitlement({"identity": "g1", "type": "group", "attributes": {"name": "Admins"}})
    assert (m.resource_id, m.resource_name, m.resource_kind) == ("g1", "Admins", "group")
    assert (m.role_id, m.role_name, m.implies) == ("member", "member", [])


def test_entitlement_hierarchy_from_schema_attributes():
    spec = Spec.from_dict(SPEC)
    obj = {"identity": "sales:CONNECT", "type": "role", "attributes": {"db": "sales", "privilege": "CONNECT"}}
    obj["attributes"]["inherits"] = "sales:USAGE"
    m = spec.map_entitlement(obj)
    assert (m.resource_id, m.resource_name, m.resource_kind) == ("sales", "sales", "database")
    assert (m.role_id, m.role_name, m.implies) == ("CONNECT", "CONNECT", ["sales:USAGE"])


def test_entitlement_hierarchy_from_output_fields_wins():
    spec = Spec.from_dict(SPEC)
    obj = {
        "identity": "x",
        "type": "role",
        "attributes": {"db": "sales", "privilege": "CONNECT"},
        "resource": {"id": "db-7", "name": "Sales DB", "kind": "schema"},
        "role": {"id": "rw", "name": "Read/write"},
        "implies": ["y", "z"],
    }
    m = spec.map_entitlement(obj)
    assert m == type(m)("db-7", "Sales DB", "schema", "rw", "Read/write", ["y", "z"])


def test_demo_entitlements_map_to_resources_with_three_roles():
    outputs, _ = demo.invoke(
        "std:entitlement:list",
        {"url": "https://demo.example.com", "apiToken": "demo", "users": 1, "groups": 4},
    )
    mappings = [demo.spec.map_entitlement(o) for o in outputs]
    resources = {m.resource_id for m in mappings}
    assert len(resources) == 4
    for resource in resources:
        roles = {m.role_id: m for m in mappings if m.resource_id == resource}
        assert set(roles) == {"admin", "member", "viewer"}
        assert roles["admin"].implies == [f"{resource}-members", f"{resource}-viewers"]
        assert roles["viewer"].implies == []
        assert roles["admin"].resource_kind in ("project", "group")


def test_account_entitlements_single_value_or_list():
    spec = Spec.from_dict(SPEC)
    assert spec.account_entitlements({"attributes": {"groups": "g1"}}) == ["g1"]
    assert spec.account_entitlements({"attributes": {"groups": ["g1", "g2"]}}) == ["g1", "g2"]
    assert spec.account_entitlements({"attributes": {}}) == []
    refs = spec.account_entitlement_refs({"attributes": {"groups": "g1", "roles": ["r1"]}})
    assert refs == [("group", "g1"), ("role", "r1")]


def test_a_card_list_with_a_secret_field_is_a_secret_item():
    """Cards holding a secret field (say, one API key per tenant) are stored and shown as a secret: the
    portal never returns them, as it could not return them without their keys."""
    spec = Spec.from_dict(
        {
            "name": "tenants",
            "commands": ["std:test-connection"],
            "sourceConfig": [
                {"key": "baseUrl", "type": "url", "label": "URL"},
                {
                    "key": "tenants",
                    "type": "cardList",
                    "label": "Tenants",
                    "subMenus": [
                        {
                            "label": "Tenant",
                            "items": [
                                {"key": "tenant", "type": "text", "label": "Tenant"},
                                {"key": "apiKey", "type": "secret", "label": "API key"},
                            ],
                        }
                    ],
                },
                {
                    "key": "mappings",
                    "type": "cardList",
                    "label": "Mappings",
                    "subMenus": [
                        {"label": "Mapping", "items": [{"key": "from", "type": "text", "label": "From"}]}
                    ],
                },
            ],
        }
    )
    assert spec.secret_keys == ["tenants"]
    assert spec.validate_config({"tenants": [{"tenant": "a", "apiKey": "k"}], "mappings": []})
