"""The catalogue of applications: the installed connectors, seen from the portal.

Everything the domain needs of a connector's spec (is the key known, its icon, which
config items are secret, is a config valid, are filter strings valid) goes through here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from connectors import registry
from connectors.sdk import ConfigError, Filter, FilterError
from governance.netguard import ForbiddenTarget, check_host, check_url


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


def env_reference(value) -> str | None:
    """The variable name of a secret item holding an environment reference ``{"$env": NAME}``, else None."""
    if isinstance(value, Mapping) and "$env" in value:
        return str(value["$env"])
    return None


class SecretEnviron(Mapping):
    """The process environment as connectors see it in the portal: only names beginning with
    ``SECRET_ENV_PREFIX``. Nothing else (``SECRET_KEY``, ``FIELD_ENCRYPTION_KEY``, ``DATABASE_URL``...)
    can be reached through an environment reference, and a missing name reads like a refused one."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def __getitem__(self, name: str) -> str:
        if not (isinstance(name, str) and name.startswith(self.prefix)):
            raise KeyError(name)
        return os.environ[name]

    def __iter__(self) -> Iterator[str]:
        return (k for k in os.environ if k.startswith(self.prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def secret_environ() -> SecretEnviron:
    """What environment references resolve against wherever the portal runs a connector."""
    return SecretEnviron(settings.SECRET_ENV_PREFIX)


def runtime_config(integration) -> dict:
    """The config a connector runs with: connection items, secrets and connector attributes.

    A file or folder item given as a relative path is under ``CONNECTOR_FILES_DIR`` (that is how it was
    checked when saved): the connector gets it as an absolute path there, never one it would open
    relative to the worker's own folder."""
    config = {
        **integration.connection_config,
        **integration.connection_secrets,
        **integration.connector_attributes,
    }
    root = Path(settings.CONNECTOR_FILES_DIR)
    for key in integration.connector.spec.local_path_keys:
        value = config.get(key)
        if isinstance(value, str) and value.strip() and "-----BEGIN" not in value:
            if not Path(value.strip()).is_absolute():
                config[key] = str((root / value.strip()).resolve())
    return config


def check_targets(connector, config: Mapping) -> None:
    """:func:`validate_connection_policy` again before the portal runs a connector (a sync, a grant or a
    revoke), as a ``ConnectorError`` those runs report: a host name may point at a link-local or metadata
    address since the config was saved, as a webhook's may (``governance.notifications``)."""
    from connectors.sdk import ConnectorError

    try:
        validate_connection_policy(connector, config)
    except ValidationError as exc:
        raise ConnectorError(" ".join(exc.messages)) from None


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
    config = {**integration.connection_config, **integration.connection_secrets}
    try:
        connector.validate_config(config)
    except ConfigError as exc:
        raise ValidationError({"connection_config": str(exc)}) from None
    validate_connection_policy(connector, config)
    validate_connector_attributes(connector, integration.connector_attributes)
    if integration.notification_webhook_url:
        try:
            check_url(integration.notification_webhook_url)
        except ForbiddenTarget as exc:
            raise ValidationError({"notification_webhook_url": str(exc)}) from None


def validate_connection_policy(connector, config: Mapping) -> None:
    """What the portal allows of a valid config: environment references only to names with the secret
    prefix, local files only under ``CONNECTOR_FILES_DIR``, no link-local or metadata address."""
    errors: list[str] = []
    prefix = settings.SECRET_ENV_PREFIX
    for key in connector.spec.secret_keys:
        name = env_reference(config.get(key))
        if name is not None and not name.startswith(prefix):
            errors.append(
                f"config item {key!r}: an environment reference must name a variable beginning with {prefix}."
            )
    root = Path(settings.CONNECTOR_FILES_DIR).resolve()
    for key in connector.spec.local_path_keys:
        value = config.get(key)
        if not isinstance(value, str) or not value.strip() or "-----BEGIN" in value:
            continue  # empty, or PEM text rather than a path
        path = Path(value.strip())
        resolved = (root / path).resolve() if not path.is_absolute() else path.resolve()
        if resolved != root and root not in resolved.parents:
            errors.append(f"config item {key!r}: files and folders of connectors must be under {root}.")
    for key in connector.spec.address_keys:
        value = config.get(key)
        if not isinstance(value, str) or not value.strip() or "-----BEGIN" in value:
            continue
        try:
            if "://" in value:
                check_url(value.strip())
            else:
                check_host(urlsplit("//" + value.strip()).hostname or value.strip())
        except (ForbiddenTarget, ValueError) as exc:
            errors.append(f"config item {key!r}: {exc}")
    if errors:
        raise ValidationError({"connection_config": errors})


def test_connection(application: str, config: dict) -> tuple[bool, str]:
    """Run the connector's ``std:test-connection`` with ``config``; ``(ok, message)`` — never raises."""
    from connectors.sdk import ConnectorError

    try:
        connector = get_connector(application)
    except ValidationError as exc:
        return False, " ".join(exc.message_dict["application"])
    try:
        connector.validate_config(config)
        validate_connection_policy(connector, config)
    except ConfigError as exc:
        return False, str(exc)
    except ValidationError as exc:
        return False, " ".join(exc.messages)
    if not connector.spec.supports("std:test-connection"):
        return True, f"The {connector.spec.label} connector cannot test connections; the config is valid."
    try:
        connector.invoke("std:test-connection", config, environ=secret_environ())
    except ConnectorError as exc:
        return False, str(exc)
    except Exception as exc:  # a connector bug must read as a failed test, not a server error
        return False, f"The connector failed: {type(exc).__name__}: {exc}"
    return True, "Connection succeeded."
