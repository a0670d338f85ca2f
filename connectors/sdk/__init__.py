"""The connector SDK: specs, connectors, streaming execution, filters and errors.

Pure Python: nothing here imports Django or the portal's packages.
"""

from .commands import AttributeChange, apply_changes, changes
from .connector import MAX_OBJECT_BYTES, Connector, Context, Response, Result
from .errors import (
    Cancelled,
    ConfigError,
    ConnectorError,
    InputError,
    ObjectNotFound,
    OutputError,
    SecretError,
    SpecError,
    StateError,
    UnknownConnector,
    UnsupportedCommand,
    one_line,
)
from .filter import Filter, FilterError
from .spec import (
    AccountSchema,
    AttributeDef,
    ConfigItem,
    ConnectionOption,
    EntitlementMapping,
    EntitlementSchema,
    Spec,
    as_list,
    load_spec,
)

__all__ = [
    "AccountSchema",
    "AttributeChange",
    "AttributeDef",
    "Cancelled",
    "ConfigError",
    "ConfigItem",
    "ConnectionOption",
    "Connector",
    "ConnectorError",
    "Context",
    "EntitlementMapping",
    "EntitlementSchema",
    "Filter",
    "FilterError",
    "InputError",
    "MAX_OBJECT_BYTES",
    "ObjectNotFound",
    "OutputError",
    "Response",
    "Result",
    "SecretError",
    "Spec",
    "SpecError",
    "StateError",
    "UnknownConnector",
    "UnsupportedCommand",
    "apply_changes",
    "as_list",
    "changes",
    "load_spec",
    "one_line",
]
