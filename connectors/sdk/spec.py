"""Loading, checking and querying ``connector-spec.json``.

The format is SailPoint Identity Security Cloud's SaaS connector spec, read leniently: real-world specs
use menus or bare sections, card lists with sub-menus, non-standard item types (``password``) and
duplicate attribute names. Such things are recorded in :attr:`Spec.warnings`; only what the portal
cannot work with (invalid JSON, a missing name, commands that are not a list...) is a :class:`SpecError`.

Portal extensions (all optional, ignored by ISC): ``label``, ``icon``, ``docs``, ``exampleConfig``,
``connectionOptions`` at the top level, ``hierarchy`` in an entitlement schema, and on a config item
``address`` (the item says where the secrets go: changing it clears them), ``localPath`` (the item names
a file or folder on the machine running the connector) and ``minimum`` / ``maximum`` (bounds of a number). They are described in
``connectors/README.md``.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from .errors import ConfigError, SecretError, SpecError

SPEC_FILENAME = "connector-spec.json"

STANDARD_COMMANDS = (
    "std:test-connection",
    "std:account:list",
    "std:account:read",
    "std:account:create",
    "std:account:update",
    "std:account:delete",
    "std:account:enable",
    "std:account:disable",
    "std:account:unlock",
    "std:account:discover-schema",
    "std:change-password",
    "std:entitlement:list",
    "std:entitlement:read",
    "std:source-data:discover",
    "std:source-data:read",
)

ITEM_TYPES = frozenset(
    {
        "text",
        "number",
        "secret",
        "textarea",
        "secrettextarea",
        "checkbox",
        "url",
        "toggle",
        "radio",
        "select",
        "list",
        "keyValue",
        "cardList",
        "dynamicCheckboxList",
    }
)
SECRET_TYPES = frozenset({"secret", "secrettextarea", "password"})
BOOLEAN_TYPES = frozenset({"checkbox", "toggle"})
# Non-standard item types seen in the wild, and the standard type they behave as.
ITEM_TYPE_ALIASES = {"password": "secret"}

# Config keys the portal adds next to the sourceConfig items (connector attributes).
FILTER_KEY = "filterString"
FILTER_SUFFIX = ".filterString"
CONNECTION_OPTION_KEY = "connectionOption"

_NODE = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "key": {"type": "string", "minLength": 1},
        "label": {"type": "string"},
        "required": {"type": "boolean"},
        "address": {"type": "boolean"},
        "localPath": {"type": "boolean"},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/node"}},
        "options": {
            "type": "array",
            "items": {"type": "object", "required": ["value"]},
        },
        "subMenus": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            },
        },
    },
}
_ATTRIBUTE = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "type": {"type": "string"},
        "multi": {"type": ["boolean", "string"]},
        "entitlement": {"type": ["boolean", "string"]},
        "managed": {"type": ["boolean", "string"]},
        "schemaObjectType": {"type": "string"},
    },
}
_HIERARCHY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        name: {"type": "string", "minLength": 1}
        for name in (
            "resourceIdAttribute",
            "resourceNameAttribute",
            "resourceKindAttribute",
            "resourceKind",
            "roleIdAttribute",
            "roleNameAttribute",
            "impliesAttribute",
        )
    },
}
SPEC_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "commands"],
    "$defs": {"node": _NODE, "attribute": _ATTRIBUTE},
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "label": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "icon": {"type": "string", "minLength": 1},
        "docs": {"type": "string", "minLength": 1},
        "keyType": {"enum": ["simple", "compound"]},
        "commands": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "supportsStatefulCommands": {"type": "boolean"},
        "sourceConfig": {"type": "array", "items": {"$ref": "#/$defs/node"}},
        "sourceConfigInitialValues": {"type": "object"},
        "exampleConfig": {"type": "object"},
        "connectionOptions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "label", "items"],
                "properties": {
                    "key": {"type": "string", "minLength": 1},
                    "label": {"type": "string", "minLength": 1},
                    "description": {"type": "string"},
                    "items": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "accountSchema": {
            "type": "object",
            "properties": {
                "displayAttribute": {"type": "string"},
                "identityAttribute": {"type": "string"},
                "groupAttribute": {"type": "string"},
                "attributes": {"type": "array", "items": {"$ref": "#/$defs/attribute"}},
            },
        },
        "entitlementSchemas": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["type"],
                "properties": {
                    "type": {"type": "string", "minLength": 1},
                    "displayAttribute": {"type": "string"},
                    "identityAttribute": {"type": "string"},
                    "attributes": {"type": "array", "items": {"$ref": "#/$defs/attribute"}},
                    "hierarchy": _HIERARCHY,
                },
            },
        },
    },
}
_SPEC_VALIDATOR = jsonschema.Draft202012Validator(SPEC_SCHEMA)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


# --------------------------------------------------------------------------------------------------
# Data classes


@dataclass(frozen=True)
class ConfigItem:
    """One field of the connection config (a ``sourceConfig`` item that has a ``key``)."""

    key: str
    type: str
    label: str = ""
    required: bool = False
    options: tuple[Any, ...] = ()
    parent_key: str | None = None
    parent_value: Any = None
    help: str = ""
    section: str = ""
    menu: str = ""
    children: tuple[ConfigItem, ...] = ()  # the fields of each card of a ``cardList``
    address: bool = False  # where the connection goes (host, URL, port, TLS trust...): secrets follow it
    local_path: bool = False  # a file or folder on the machine running the connector
    minimum: float | None = None
    maximum: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_secret(self) -> bool:
        """A secret type, or a ``cardList`` one of whose fields is: the whole list is then kept as a secret
        (write-only, never returned), since its cards cannot be returned without their secret fields."""
        return self.type in SECRET_TYPES or any(child.is_secret for child in self.children)


@dataclass(frozen=True)
class AttributeDef:
    name: str
    type: str = "string"
    description: str = ""
    multi: bool = False
    entitlement: bool = False
    managed: bool = False
    schema_object_type: str | None = None
    required: bool = False


@dataclass(frozen=True)
class AccountSchema:
    display_attribute: str | None = None
    identity_attribute: str | None = None
    group_attribute: str | None = None
    attributes: tuple[AttributeDef, ...] = ()

    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def attribute(self, name: str) -> AttributeDef | None:
        return next((a for a in self.attributes if a.name == name), None)


@dataclass(frozen=True)
class Hierarchy:
    """How an entitlement schema's attributes name the portal resource and role (``hierarchy`` extension)."""

    resource_id_attribute: str | None = None
    resource_name_attribute: str | None = None
    resource_kind_attribute: str | None = None
    resource_kind: str | None = None
    role_id_attribute: str | None = None
    role_name_attribute: str | None = None
    implies_attribute: str | None = None


@dataclass(frozen=True)
class EntitlementSchema:
    type: str
    display_attribute: str | None = None
    identity_attribute: str | None = None
    attributes: tuple[AttributeDef, ...] = ()
    hierarchy: Hierarchy = Hierarchy()

    @property
    def attribute_names(self) -> list[str]:
        return [a.name for a in self.attributes]


@dataclass(frozen=True)
class ConnectionOption:
    """One way to connect (e.g. password vs certificate): a label and the config items it uses."""

    key: str
    label: str
    items: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class EntitlementMapping:
    """Where an entitlement lands in the portal inventory (Integration → Resource → Role)."""

    resource_id: str
    resource_name: str
    resource_kind: str
    role_id: str
    role_name: str
    implies: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Loading


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Load a spec file (or the ``connector-spec.json`` of a folder). Raises :class:`SpecError`."""
    path = Path(path)
    if path.is_dir():
        path = path / SPEC_FILENAME
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror or exc}", path=str(path)) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec is not UTF-8 (byte {exc.start})", path=str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = exc.doc.splitlines()
        bad = lines[exc.lineno - 1].lstrip() if 0 < exc.lineno <= len(lines) else ""
        hint = ""
        if bad.startswith(("<<<<<<<", "=======", ">>>>>>>", "|||||||")):
            hint = " (unresolved merge-conflict marker)"
        raise SpecError(
            f"invalid JSON: {exc.msg}{hint}", path=str(path), line=exc.lineno, column=exc.colno
        ) from exc
    return Spec.from_dict(data, path=path)


def _json_path(error: jsonschema.ValidationError) -> str:
    out = "$"
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class Spec:
    """A loaded connector spec. Build with :func:`load_spec` or :meth:`Spec.from_dict`."""

    def __init__(self, data: Mapping[str, Any], *, path: Path | None = None):
        self.raw: Mapping[str, Any] = data
        self.path: Path | None = path
        self.folder: Path | None = path.parent if path is not None else None
        self.warnings: list[str] = []

        self.name: str = data["name"]
        self.label: str = data.get("label") or self.name
        self.description: str = data.get("description", "")
        self.key_type: str = data.get("keyType", "simple")
        self.commands: tuple[str, ...] = tuple(dict.fromkeys(data["commands"]))
        self.supports_stateful: bool = bool(data.get("supportsStatefulCommands", False))
        self.initial_values: dict[str, Any] = dict(data.get("sourceConfigInitialValues") or {})
        self.example_config: dict[str, Any] = dict(data.get("exampleConfig") or {})
        self.icon: Path | None = self._file(data.get("icon"), ("icon.svg", "icon.png"), "icon")
        self.docs: Path | str | None = self._docs(data.get("docs"))

        for command in self.commands:
            if command not in STANDARD_COMMANDS:
                self.warnings.append(f"non-standard command {command!r}")
        if len(self.commands) != len(data["commands"]):
            self.warnings.append("duplicate commands")

        self.config_items: list[ConfigItem] = []
        self._walk(data.get("sourceConfig") or [], menu="", section="", into=self.config_items)
        self._items_by_key: dict[str, ConfigItem] = {}
        for item in self.config_items:
            if item.key in self._items_by_key:
                self.warnings.append(f"config item {item.key!r} is declared more than once")
            else:
                self._items_by_key[item.key] = item
        self.secret_keys: list[str] = [i.key for i in self._items_by_key.values() if i.is_secret]
        # Items saying where the connection goes: a change of any of them clears the stored secrets.
        self.address_keys: list[str] = [
            i.key for i in self._items_by_key.values() if i.address and not i.is_secret
        ]
        self.local_path_keys: list[str] = [i.key for i in self._items_by_key.values() if i.local_path]

        self.connection_options: list[ConnectionOption] = []
        for opt in data.get("connectionOptions") or []:
            unknown = [k for k in opt["items"] if k not in self._items_by_key]
            if unknown:
                raise SpecError(
                    f"connection option {opt['key']!r} uses undeclared config items {unknown}",
                    path=str(path) if path else None,
                )
            self.connection_options.append(
                ConnectionOption(opt["key"], opt["label"], tuple(opt["items"]), opt.get("description", ""))
            )

        acc = data.get("accountSchema") or {}
        self.account_schema = AccountSchema(
            display_attribute=acc.get("displayAttribute"),
            identity_attribute=acc.get("identityAttribute"),
            group_attribute=acc.get("groupAttribute"),
            attributes=self._attributes(acc.get("attributes") or [], "accountSchema"),
        )
        self.entitlement_schemas: dict[str, EntitlementSchema] = {}
        for ent in data.get("entitlementSchemas") or []:
            if ent["type"] in self.entitlement_schemas:
                self.warnings.append(f"entitlement type {ent['type']!r} is declared more than once")
                continue
            h = ent.get("hierarchy") or {}
            self.entitlement_schemas[ent["type"]] = EntitlementSchema(
                type=ent["type"],
                display_attribute=ent.get("displayAttribute"),
                identity_attribute=ent.get("identityAttribute"),
                attributes=self._attributes(
                    ent.get("attributes") or [], f"entitlementSchemas[{ent['type']}]"
                ),
                hierarchy=Hierarchy(
                    resource_id_attribute=h.get("resourceIdAttribute"),
                    resource_name_attribute=h.get("resourceNameAttribute"),
                    resource_kind_attribute=h.get("resourceKindAttribute"),
                    resource_kind=h.get("resourceKind"),
                    role_id_attribute=h.get("roleIdAttribute"),
                    role_name_attribute=h.get("roleNameAttribute"),
                    implies_attribute=h.get("impliesAttribute"),
                ),
            )

    # -- construction helpers ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any, *, path: str | os.PathLike[str] | None = None) -> Spec:
        """Check the structure of already-parsed spec data and build a :class:`Spec`."""
        p = Path(path) if path is not None else None
        errors = sorted(_SPEC_VALIDATOR.iter_errors(data), key=lambda e: list(e.absolute_path))
        if errors:
            err = jsonschema.exceptions.best_match(errors)
            raise SpecError(f"{_json_path(err)}: {err.message}", path=str(p) if p else None)
        return cls(data, path=p)

    def _file(self, value: str | None, defaults: Iterable[str], what: str) -> Path | None:
        if self.folder is None:
            return None
        if value:
            candidate = (self.folder / value).resolve()
            if not candidate.is_file():
                self.warnings.append(f"{what} file {value!r} not found next to the spec")
                return None
            return candidate
        for name in defaults:
            if (self.folder / name).is_file():
                return self.folder / name
        return None

    def _docs(self, value: str | None) -> Path | str | None:
        if value and urlsplit(value).scheme in ("http", "https"):
            return value
        return self._file(value, ("README.md",), "docs")

    def _walk(self, nodes: list[Any], *, menu: str, section: str, into: list[ConfigItem]) -> None:
        for node in nodes:
            kind = node.get("type", "")
            if "key" in node:
                into.append(self._item(node, menu=menu, section=section))
            elif kind == "menu":
                self._walk(node.get("items") or [], menu=node.get("label", ""), section=section, into=into)
            elif kind == "section":
                title = node.get("sectionTitle") or node.get("label", "")
                self._walk(node.get("items") or [], menu=menu, section=title, into=into)
            elif node.get("items"):
                self.warnings.append(f"sourceConfig node of type {kind!r} walked as a section")
                self._walk(node["items"], menu=menu, section=section, into=into)
            else:
                self.warnings.append(f"sourceConfig node of type {kind!r} without key ignored")

    def _item(self, node: Mapping[str, Any], *, menu: str, section: str) -> ConfigItem:
        kind = node.get("type") or "text"
        if kind in ITEM_TYPE_ALIASES:
            self.warnings.append(
                f"config item {node['key']!r}: non-standard type {kind!r}, "
                f"handled as {ITEM_TYPE_ALIASES[kind]!r}"
            )
        elif kind not in ITEM_TYPES:
            self.warnings.append(f"config item {node['key']!r}: unknown type {kind!r}, value not checked")
        children: list[ConfigItem] = []
        for sub in node.get("subMenus") or []:
            self._walk(sub.get("items") or [], menu=menu, section=sub.get("label", section), into=children)
        return ConfigItem(
            key=node["key"],
            type=kind,
            label=node.get("label", ""),
            required=bool(node.get("required", False)),
            options=tuple(o["value"] for o in node.get("options") or []),
            parent_key=node.get("parentKey"),
            parent_value=node.get("parentValue"),
            help=node.get("helpKey") or node.get("helpText") or "",
            section=section,
            menu=menu,
            children=tuple(children),
            address=bool(node["address"]) if "address" in node else _looks_like_address(node["key"], kind),
            local_path=bool(node.get("localPath", False)),
            minimum=node.get("minimum"),
            maximum=node.get("maximum"),
            raw=node,
        )

    def _attributes(self, attrs: list[Mapping[str, Any]], where: str) -> tuple[AttributeDef, ...]:
        out: dict[str, AttributeDef] = {}
        for a in attrs:
            if a["name"] in out:
                self.warnings.append(f"{where}: duplicate attribute {a['name']!r} (first declaration kept)")
                continue
            for flag in ("multi", "entitlement", "managed"):
                if isinstance(a.get(flag), str):
                    self.warnings.append(f"{where}: attribute {a['name']!r} has {flag} as a string")
            out[a["name"]] = AttributeDef(
                name=a["name"],
                type=a.get("type", "string"),
                description=a.get("description", ""),
                multi=_truthy(a.get("multi", False)),
                entitlement=_truthy(a.get("entitlement", False)),
                managed=_truthy(a.get("managed", False)),
                schema_object_type=a.get("schemaObjectType"),
                required=_truthy(a.get("required", False)),
            )
        return tuple(out.values())

    # -- queries ---------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Spec {self.name!r} key={self.key_type} commands={len(self.commands)}>"

    def config_item(self, key: str) -> ConfigItem | None:
        return self._items_by_key.get(key)

    def supports(self, command: str) -> bool:
        return command in self.commands

    @property
    def entitlement_types(self) -> list[str]:
        return list(self.entitlement_schemas)

    def attribute_names(self, object_type: str | None = None) -> list[str]:
        """Attribute names of ``account``, an entitlement type, or (``None``) of every object type."""
        if object_type == "account":
            return self.account_schema.attribute_names
        if object_type is not None:
            schema = self.entitlement_schemas.get(object_type)
            return schema.attribute_names if schema else []
        names = dict.fromkeys(self.account_schema.attribute_names)
        for schema in self.entitlement_schemas.values():
            names.update(dict.fromkeys(schema.attribute_names))
        return list(names)

    # -- hierarchy ---------------------------------------------------------------------------------

    def map_entitlement(self, obj: Mapping[str, Any]) -> EntitlementMapping:
        """Place an entitlement output object in the portal's Integration → Resource → Role inventory.

        Precedence: the object's own ``resource`` / ``role`` / ``implies`` fields, then the entitlement
        schema's ``hierarchy`` attribute mapping, then the default: the entitlement is a resource of its
        own (id = identity, name = display attribute, kind = entitlement type) with one role ``member``.
        """
        identity = str(obj["identity"])
        ent_type = obj.get("type") or ""
        attrs = obj.get("attributes") or {}
        schema = self.entitlement_schemas.get(ent_type)
        h = schema.hierarchy if schema else Hierarchy()
        display = attrs.get(schema.display_attribute) if schema and schema.display_attribute else None

        def attr(name: str | None) -> Any:
            value = attrs.get(name) if name else None
            if isinstance(value, list):
                value = value[0] if value else None
            return None if value in (None, "") else value

        res = obj.get("resource") or {}
        role = obj.get("role") or {}
        resource_id = res.get("id") or attr(h.resource_id_attribute)
        if resource_id is None:
            resource_id, default_name = identity, display or identity
        else:
            default_name = resource_id
        resource_name = res.get("name") or attr(h.resource_name_attribute) or default_name
        resource_kind = res.get("kind") or attr(h.resource_kind_attribute) or h.resource_kind or ent_type
        role_id = role.get("id") or attr(h.role_id_attribute) or "member"
        role_name = role.get("name") or attr(h.role_name_attribute) or role_id
        implies = obj.get("implies")
        if implies is None and h.implies_attribute:
            implies = attrs.get(h.implies_attribute)
        return EntitlementMapping(
            resource_id=str(resource_id),
            resource_name=str(resource_name),
            resource_kind=str(resource_kind),
            role_id=str(role_id),
            role_name=str(role_name),
            implies=[str(v) for v in as_list(implies)],
        )

    def account_entitlements(self, obj: Mapping[str, Any]) -> list[str]:
        """Identities of the entitlements an account output object holds.

        Read from the account schema's ``groupAttribute`` (a single string or a list); without one,
        from every account attribute flagged ``entitlement: true``.
        """
        attrs = obj.get("attributes") or {}
        group = self.account_schema.group_attribute
        if group:
            return [str(v) for v in as_list(attrs.get(group))]
        out: list[str] = []
        for a in self.account_schema.attributes:
            if a.entitlement:
                out.extend(str(v) for v in as_list(attrs.get(a.name)))
        return out

    def account_entitlement_refs(self, obj: Mapping[str, Any]) -> list[tuple[str, str]]:
        """``(entitlement type, identity)`` pairs an account holds, over every entitlement attribute.

        The type is the attribute's ``schemaObjectType``, else ``group`` when declared, else the first
        declared entitlement type.
        """
        attrs = obj.get("attributes") or {}
        types = self.entitlement_types
        default = "group" if "group" in types else (types[0] if types else "group")
        names = [a for a in self.account_schema.attributes if a.entitlement]
        group = self.account_schema.group_attribute
        if group and all(a.name != group for a in names):
            names.insert(0, AttributeDef(name=group, entitlement=True))
        refs: list[tuple[str, str]] = []
        for a in names:
            for v in as_list(attrs.get(a.name)):
                refs.append((a.schema_object_type or default, str(v)))
        return refs

    # -- config --------------------------------------------------------------------------------------

    def validate_config(self, config: Any) -> dict[str, Any]:
        """Check a connection config against ``sourceConfig``; return a normalised copy.

        Raises :class:`ConfigError` naming the item. Numbers and booleans given as strings (from forms)
        are converted. Secret items may hold ``{"$env": "NAME"}``, resolved later by
        :meth:`resolve_secrets`. Keys not declared in the spec are kept unchecked, except the filter keys
        ``filterString`` / ``<type>.filterString``, which must parse.
        """
        if not isinstance(config, Mapping):
            raise ConfigError(f"config must be a JSON object, got {_type_name(config)}")
        out = dict(config)
        option = self._connection_option(out)
        optional_by_option: set[str] = set()
        if option is not None:
            for opt in self.connection_options:
                if opt is not option:
                    optional_by_option.update(opt.items)
            optional_by_option.difference_update(option.items)
        for item in self._items_by_key.values():
            required = item.required or (option is not None and item.key in option.items)
            if item.key in optional_by_option:
                required = False
            _check_item(item, out, required=required, path=item.key)
        for key, value in out.items():
            if key == FILTER_KEY or key.endswith(FILTER_SUFFIX):
                self._check_filter(key, value)
        return out

    def _connection_option(self, config: Mapping[str, Any]) -> ConnectionOption | None:
        if not self.connection_options:
            return None
        chosen = config.get(CONNECTION_OPTION_KEY)
        if chosen in (None, ""):
            return self.connection_options[0]
        for opt in self.connection_options:
            if opt.key == chosen:
                return opt
        known = ", ".join(o.key for o in self.connection_options)
        raise ConfigError(
            f"config item {CONNECTION_OPTION_KEY!r}: unknown connection option {chosen!r} (options: {known})",
            item=CONNECTION_OPTION_KEY,
        )

    def _check_filter(self, key: str, value: Any) -> None:
        if value in (None, ""):
            return
        if not isinstance(value, str):
            raise ConfigError(
                f"config item {key!r}: a filter must be a string, got {_type_name(value)}", item=key
            )
        from .filter import Filter, FilterError

        object_type = None if key == FILTER_KEY else key[: -len(FILTER_SUFFIX)]
        if (
            object_type is not None
            and object_type != "account"
            and object_type not in self.entitlement_schemas
        ):
            raise ConfigError(
                f"config item {key!r}: no object type {object_type!r} "
                f"(types: account{''.join(', ' + t for t in self.entitlement_schemas)})",
                item=key,
            )
        try:
            Filter.compile(value)
        except FilterError as exc:
            raise ConfigError(f"config item {key!r}: invalid filter: {exc}", item=key) from exc
        names = self.attribute_names(object_type)
        if names:
            unknown = Filter.validate(value, names)
            if unknown:
                raise ConfigError(
                    f"config item {key!r}: unknown attribute(s) {', '.join(map(repr, unknown))} in filter",
                    item=key,
                )

    def resolve_secrets(
        self, config: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Return a copy of ``config`` with ``{"$env": "NAME"}`` secret references replaced by values."""
        env = os.environ if environ is None else environ
        out = dict(config)
        for key in self.secret_keys:
            value = out.get(key)
            if isinstance(value, Mapping) and "$env" in value:
                name = value["$env"]
                if name not in env:
                    # A restricted environment (the portal's) does not say whether the name exists elsewhere.
                    why = "is not set" if environ is None else "is not available to connectors"
                    raise SecretError(f"config item {key!r}: environment variable {name} {why}", item=key)
                out[key] = env[name]
        return out


def as_list(value: Any) -> list[Any]:
    """A single value (string, number...) as a one-element list, a list as itself, ``None`` as ``[]``."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


# Item keys that say where a connection goes, for specs that do not declare ``address`` themselves.
_ADDRESS_WORDS = re.compile(
    r"(url|uri|host|port|endpoint|server|domain|region|tenant|instance|basedn|base_dn|ssl|tls|cert)",
    re.IGNORECASE,
)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _looks_like_address(key: str, kind: str) -> bool:
    return kind == "url" or bool(_ADDRESS_WORDS.search(key))


def _is_secret_ref(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and set(value) == {"$env"}
        and isinstance(value["$env"], str)
        and bool(value["$env"])
    )


def _applies(item: ConfigItem, config: Mapping[str, Any]) -> bool:
    if not item.parent_key:
        return True
    actual = config.get(item.parent_key)
    expected = item.parent_value
    if isinstance(actual, bool) or isinstance(expected, bool):
        return _truthy(actual) == _truthy(expected)
    return str(actual) == str(expected)


def _check_item(item: ConfigItem, config: dict[str, Any], *, required: bool, path: str) -> None:
    """Check (and normalise in place) ``config[item.key]``."""
    label = f" ({item.label})" if item.label else ""
    where = f"config item {path!r}"
    value = config.get(item.key)
    kind = ITEM_TYPE_ALIASES.get(item.type, item.type)
    if value is None or value == "" or value == []:
        if required and kind not in BOOLEAN_TYPES and _applies(item, config):
            raise ConfigError(f"missing required config item {path!r}{label}", item=path)
        return

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{where}{label} must be {expected}, got {_type_name(value)}", item=path)

    if kind in ("secret", "secrettextarea"):
        if not (isinstance(value, str) or _is_secret_ref(value)):
            raise bad('a string or a secret reference {"$env": "NAME"}')
    elif kind in ("text", "textarea"):
        if not isinstance(value, str):
            raise bad("a string")
    elif kind == "url":
        if not isinstance(value, str):
            raise bad("a URL string")
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc:
            raise ConfigError(f"{where}{label} must be an absolute URL, got {value!r}", item=path)
    elif kind == "number":
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise ConfigError(f"{where}{label} must be a number, got {value!r}", item=path) from None
            config[item.key] = value
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        number = config[item.key]
        if not math.isfinite(number):
            raise ConfigError(f"{where}{label} must be a finite number, got {value!r}", item=path)
        low, high = item.minimum, item.maximum
        if (low is not None and number < low) or (high is not None and number > high):
            bounds = (
                f"from {_num(low)} to {_num(high)}"
                if low is not None and high is not None
                else (f"at least {_num(low)}" if low is not None else f"at most {_num(high)}")
            )
            raise ConfigError(f"{where}{label} must be {bounds}, got {value!r}", item=path)
    elif kind in BOOLEAN_TYPES:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            config[item.key] = value.lower() == "true"
        elif not isinstance(value, bool):
            raise bad("true or false")
    elif kind in ("select", "radio", "dynamicCheckboxList"):
        values = value if isinstance(value, list) else [value]
        if item.options:
            for v in values:
                if v not in item.options:
                    allowed = ", ".join(repr(o) for o in item.options)
                    raise ConfigError(f"{where}{label}: {v!r} is not one of {allowed}", item=path)
    elif kind == "list":
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise bad("a list of strings")
    elif kind == "keyValue":
        if isinstance(value, list):
            ok = all(isinstance(v, Mapping) and "key" in v and "value" in v for v in value)
            if not ok:
                raise bad('an object or a list of {"key": ..., "value": ...}')
        elif not isinstance(value, Mapping):
            raise bad("an object of key/value pairs")
    elif kind == "cardList":
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise bad("a list of objects")
        cards = [dict(v) for v in value]
        for i, card in enumerate(cards):
            for child in item.children:
                _check_item(child, card, required=child.required, path=f"{path}[{i}].{child.key}")
        config[item.key] = cards
    if _is_secret_ref(value) and kind not in ("secret", "secrettextarea"):
        raise ConfigError(f"{where}{label}: secret references are only allowed in secret items", item=path)
