"""The catalogue of applications: the installed connectors, seen from the portal.

Everything the domain needs of a connector's spec (is the key known, its icon, which
config items are secret, is a config valid, are filter strings valid) goes through here.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.urls import reverse

from connectors import registry
from connectors.sdk import ConfigError, Filter, FilterError


def connectors() -> dict:
    return registry.discover()


def get_connector(slug: str):
    """The connector for an application key; ``ValidationError`` naming the field if unknown."""
    try:
        return registry.get(slug)
    except LookupError:
        known = ", ".join(sorted(connectors())) or "none"
        raise ValidationError(
            {"application": f"Unknown application {slug!r}; installed connectors: {known}."}
        ) from None


def application_choices() -> list[tuple[str, str]]:
    return sorted(((slug, c.spec.label) for slug, c in connectors().items()), key=lambda x: x[1].lower())


def icon_url(slug: str) -> str:
    return reverse("integrations:application-icon", args=[slug])


def split_secrets(connector, config: dict) -> tuple[dict, dict]:
    """Split a connection config into its plain items and its secret items."""
    secret_keys = set(connector.spec.secret_keys)
    plain = {k: v for k, v in config.items() if k not in secret_keys}
    secret = {k: v for k, v in config.items() if k in secret_keys}
    return plain, secret


def runtime_config(integration) -> dict:
    """The config a connector runs with: connection items, secrets and connector attributes."""
    return {
        **integration.connection_config,
        **integration.connection_secrets,
        **integration.connector_attributes,
    }


def _schema_attributes(connector, object_type: str | None) -> list[str]:
    return connector.spec.attribute_names(object_type)


def validate_connector_attributes(connector, attributes) -> None:
    """Refuse unknown keys, malformed filters and filters naming attributes the schema lacks."""
    if not isinstance(attributes, dict):
        raise ValidationError({"connector_attributes": "Connector attributes must be a JSON object."})
    types = {"account", *connector.spec.entitlement_schemas}
    errors: list[str] = []
    for key, value in attributes.items():
        if key == "stateful":
            if not isinstance(value, bool):
                errors.append('"stateful" must be true or false.')
            elif value and not connector.spec.supports_stateful:
                errors.append(
                    f'"stateful": the {connector.spec.label} connector does not support delta syncs.'
                )
            continue
        if key == "filterString":
            object_type = None
        elif key.endswith(".filterString") and key.removesuffix(".filterString") in types:
            object_type = key.removesuffix(".filterString")
        else:
            allowed = ", ".join(["filterString", "stateful", *sorted(f"{t}.filterString" for t in types)])
            errors.append(f"Unknown connector attribute {key!r}; allowed: {allowed}.")
            continue
        if not isinstance(value, str):
            errors.append(f"{key} must be a string.")
            continue
        if not value.strip():
            continue
        try:
            unknown = Filter.validate(value, _schema_attributes(connector, object_type))
        except FilterError as exc:
            errors.append(f"{key}: {exc}")
            continue
        if unknown:
            errors.append(
                f"{key}: unknown name(s) {', '.join(unknown)} (not in the {object_type or 'any'} schema)."
            )
    if errors:
        raise ValidationError({"connector_attributes": errors})


def validate_integration_config(integration) -> None:
    """Validate an integration's application, connection config and connector attributes."""
    connector = get_connector(integration.application)
    if not isinstance(integration.connection_config, dict):
        raise ValidationError({"connection_config": "The connection config must be a JSON object."})
    try:
        connector.validate_config({**integration.connection_config, **integration.connection_secrets})
    except ConfigError as exc:
        raise ValidationError({"connection_config": str(exc)}) from None
    validate_connector_attributes(connector, integration.connector_attributes)


def test_connection(application: str, config: dict) -> tuple[bool, str]:
    """Run the connector's ``std:test-connection`` with ``config``; ``(ok, message)`` — never raises."""
    from connectors.sdk import ConnectorError

    try:
        connector = get_connector(application)
    except ValidationError as exc:
        return False, " ".join(exc.message_dict["application"])
    if not connector.spec.supports("std:test-connection"):
        return True, f"The {connector.spec.label} connector cannot test connections; the config is valid."
    try:
        connector.invoke("std:test-connection", config)
    except ConnectorError as exc:
        return False, str(exc)
    except Exception as exc:  # a connector bug must read as a failed test, not a server error
        return False, f"The connector failed: {type(exc).__name__}: {exc}"
    return True, "Connection succeeded."
