"""Config validation and secret references."""

from __future__ import annotations

import pytest

from connectors.sdk import ConfigError, SecretError, Spec

SPEC = Spec.from_dict(
    {
        "name": "cfg",
        "commands": ["std:test-connection", "std:account:list"],
        "sourceConfig": [
            {
                "type": "menu",
                "label": "Main",
                "items": [
                    {
                        "type": "section",
                        "sectionTitle": "Connection",
                        "items": [
                            {"key": "host", "label": "Host", "type": "url", "required": True},
                            {"key": "password", "label": "Password", "type": "secret"},
                            {"key": "certificate", "label": "Certificate", "type": "secrettextarea"},
                            {"key": "port", "label": "Port", "type": "number"},
                            {"key": "tls", "label": "TLS", "type": "checkbox", "required": True},
                            {"key": "debug", "label": "Debug", "type": "toggle"},
                            {"key": "scopes", "label": "Scopes", "type": "list"},
                            {"key": "headers", "label": "Headers", "type": "keyValue"},
                            {
                                "key": "mode",
                                "label": "Mode",
                                "type": "select",
                                "options": [{"label": "A", "value": "a"}, {"label": "B", "value": "b"}],
                            },
                            {
                                "key": "proxy",
                                "label": "Proxy",
                                "type": "text",
                                "required": True,
                                "parentKey": "mode",
                                "parentValue": "b",
                            },
                            {
                                "key": "rules",
                                "type": "cardList",
                                "subMenus": [
                                    {
                                        "label": "Rule",
                                        "items": [{"key": "name", "type": "text", "required": True}],
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        ],
        "connectionOptions": [
            {"key": "password", "label": "Password", "items": ["host", "password"]},
            {"key": "certificate", "label": "Certificate", "items": ["host", "certificate"]},
        ],
        "accountSchema": {"identityAttribute": "id", "attributes": [{"name": "id"}, {"name": "dept"}]},
    }
)
GOOD = {"host": "https://db.example.com", "password": "s3cret"}


def test_good_config_passes_and_is_a_copy():
    out = SPEC.validate_config(GOOD)
    assert out == GOOD and out is not GOOD


@pytest.mark.parametrize("config", [[], "x", None, 3])
def test_config_must_be_an_object(config):
    with pytest.raises(ConfigError, match="config must be a JSON object"):
        SPEC.validate_config(config)


@pytest.mark.parametrize(
    ("changes", "item", "message"),
    [
        ({"host": None}, "host", "missing required config item 'host' (Host)"),
        ({"host": "db.example.com"}, "host", "must be an absolute URL"),
        ({"port": "eighty"}, "port", "must be a number"),
        ({"port": True}, "port", "must be a number, got a boolean"),
        ({"tls": "yes"}, "tls", "must be true or false"),
        ({"debug": 1}, "debug", "must be true or false"),
        ({"scopes": "read"}, "scopes", "must be a list of strings"),
        ({"scopes": [{"a": 1}]}, "scopes", "must be a list of strings"),
        ({"headers": "a=b"}, "headers", "key/value"),
        ({"headers": [{"key": "a"}]}, "headers", "key"),
        ({"mode": "c"}, "mode", "'c' is not one of 'a', 'b'"),
        ({"mode": "b"}, "proxy", "missing required config item 'proxy'"),
        ({"rules": [{"name": ""}]}, "rules[0].name", "missing required config item 'rules[0].name'"),
        ({"rules": "x"}, "rules", "must be a list of objects"),
        ({"password": 12}, "password", "must be a string or a secret reference"),
        ({"host": {"$env": "HOST"}}, "host", "must be a URL string"),
        ({"password": None}, "password", "missing required config item 'password'"),
        ({"connectionOption": "kerberos"}, "connectionOption", "unknown connection option 'kerberos'"),
    ],
)
def test_config_errors_name_the_item(changes, item, message):
    with pytest.raises(ConfigError) as caught:
        SPEC.validate_config({**GOOD, **changes})
    assert caught.value.item == item
    assert message in str(caught.value)


def test_form_strings_are_normalised():
    out = SPEC.validate_config({**GOOD, "port": "5432", "tls": "true", "debug": "False"})
    assert out["port"] == 5432 and out["tls"] is True and out["debug"] is False


def test_missing_checkbox_counts_as_false_and_parent_condition_is_respected():
    assert SPEC.validate_config({**GOOD, "mode": "a"})["mode"] == "a"  # proxy only required in mode b
    assert SPEC.validate_config({**GOOD, "mode": "b", "proxy": "p:3128"})["proxy"] == "p:3128"


def test_connection_option_decides_which_items_are_required():
    cert = {"host": "https://db.example.com", "connectionOption": "certificate", "certificate": "PEM"}
    assert SPEC.validate_config(cert)["certificate"] == "PEM"
    with pytest.raises(ConfigError, match="'certificate'"):
        SPEC.validate_config({"host": "https://db.example.com", "connectionOption": "certificate"})


def test_secret_references_resolve_at_execution_time():
    config = SPEC.validate_config({**GOOD, "password": {"$env": "PG_PASSWORD"}})
    assert config["password"] == {"$env": "PG_PASSWORD"}
    assert SPEC.resolve_secrets(config, {"PG_PASSWORD": "hunter2"})["password"] == "hunter2"
    with pytest.raises(SecretError) as caught:
        SPEC.resolve_secrets(config, {})
    assert caught.value.item == "password" and "PG_PASSWORD is not available" in str(caught.value)
    # Without a restricted environment, the process environment: a missing name is simply not set.
    with pytest.raises(SecretError, match="PG_PASSWORD is not set"):
        SPEC.resolve_secrets(config)


def test_numbers_are_finite_and_within_the_items_bounds():
    spec = Spec.from_dict(
        {
            "name": "bounded",
            "commands": ["std:test-connection"],
            "sourceConfig": [
                {"key": "port", "type": "number", "minimum": 1, "maximum": 65535},
                {"key": "ratio", "type": "number", "maximum": 0.5},
                {"key": "free", "type": "number"},
            ],
        }
    )
    assert spec.validate_config({"port": "5432", "ratio": 0.25})["port"] == 5432
    for config, words in (
        ({"port": 0}, "'port' must be from 1 to 65535, got 0"),
        ({"port": "70000"}, "must be from 1 to 65535"),
        ({"ratio": 0.75}, "'ratio' must be at most 0.5"),
        ({"free": "1e999"}, "'free' must be a finite number"),
        ({"free": float("nan")}, "'free' must be a finite number"),
    ):
        with pytest.raises(ConfigError, match=words):
            spec.validate_config(config)


def test_address_items_are_declared_or_recognised():
    spec = Spec.from_dict(
        {
            "name": "addressed",
            "commands": ["std:test-connection"],
            "sourceConfig": [
                {"key": "instanceUrl", "type": "text"},
                {"key": "dbHost", "type": "text"},
                {"key": "api", "type": "url"},
                {"key": "realm", "type": "text", "address": True},
                {"key": "sslMode", "type": "select", "address": False},
                {"key": "pageSize", "type": "number"},
                {"key": "clientSecret", "type": "secret"},
                {"key": "folder", "type": "text", "localPath": True},
            ],
        }
    )
    assert spec.address_keys == ["instanceUrl", "dbHost", "api", "realm"]
    assert spec.local_path_keys == ["folder"]


def test_secret_reference_only_in_secret_items():
    with pytest.raises(ConfigError, match="secret references are only allowed in secret items"):
        SPEC.validate_config({**GOOD, "headers": {"$env": "X"}})


def test_filter_keys_are_checked():
    assert SPEC.validate_config({**GOOD, "filterString": 'dept == "x"'})["filterString"] == 'dept == "x"'
    with pytest.raises(ConfigError, match="invalid filter") as caught:
        SPEC.validate_config({**GOOD, "account.filterString": 'dept == "x'})
    assert caught.value.item == "account.filterString"
    with pytest.raises(ConfigError, match="unknown attribute.*'dpt'"):
        SPEC.validate_config({**GOOD, "filterString": 'dpt == "x"'})
    with pytest.raises(ConfigError, match="no object type 'group'"):
        SPEC.validate_config({**GOOD, "group.filterString": 'id == "x"'})
    with pytest.raises(ConfigError, match="a filter must be a string"):
        SPEC.validate_config({**GOOD, "filterString": 3})
