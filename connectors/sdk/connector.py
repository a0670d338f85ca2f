"""The :class:`Connector`: a spec plus one handler per command, and streaming execution.

A handler is ``handler(context, input, res)``. It streams objects with ``res.send(obj)`` as it fetches
them, may save a delta state with ``res.save_state(dict)`` and signals progress with ``res.keep_alive()``.
:meth:`Connector.execute` validates each object cheaply, applies the configured filters in list
commands, passes every message to the caller's ``emit(kind, data)`` synchronously and returns a
:class:`Result`.
"""

from __future__ import annotations

import json
import logging
import marshal
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .commands import (
    ACCOUNT_OUTPUT_COMMANDS,
    ENTITLEMENT_LIST,
    ENTITLEMENT_OUTPUT_COMMANDS,
    ENTITLEMENT_READ,
    IDENTITY_COMMANDS,
    LIST_COMMANDS,
)
from .errors import (
    Cancelled,
    ConnectorError,
    InputError,
    OutputError,
    StateError,
    UnsupportedCommand,
)
from .spec import FILTER_KEY, FILTER_SUFFIX, Spec, load_spec

MAX_OBJECT_BYTES = 256 * 1024
"""Largest accepted output object: its compact JSON encoding, in UTF-8 bytes."""
CANCEL_CHECK_EVERY = 1000
"""``should_cancel()`` is called every this many ``res.send`` calls (and at each keep-alive)."""
KEEPALIVE_EVERY_SKIPPED = 10_000
"""A keep-alive is emitted after this many objects in a row were filtered out."""

_marshal_dumps = marshal.dumps

Emit = Callable[[str, Any], None]
Handler = Callable[["Context", dict, "Response"], None]


@dataclass
class Context:
    """What a handler gets besides its input."""

    connector: Connector
    command: str
    config: dict[str, Any]  # validated, secrets resolved
    logger: logging.Logger
    stateful: bool = False
    state: dict[str, Any] | None = None

    @property
    def spec(self) -> Spec:
        return self.connector.spec


@dataclass
class Result:
    """Outcome of a successful command. ``state`` is the last state saved (``None`` if none was)."""

    command: str
    state: dict[str, Any] | None = None
    sent: int = 0  # objects emitted
    filtered: int = 0  # objects dropped by a filter
    keep_alives: int = 0
    elapsed: float = 0.0  # seconds


class Response:
    """The ``res`` argument of a handler. Its methods are bound by :meth:`Connector.execute`."""

    __slots__ = ("send", "save_state", "keep_alive")

    def __init__(
        self, send: Callable[[Any], None], save_state: Callable[[Any], None], keep_alive: Callable[[], None]
    ):
        self.send = send
        self.save_state = save_state
        self.keep_alive = keep_alive


def _size_bound(obj: Any) -> int:
    """An upper bound of the compact JSON size of ``obj`` in UTF-8 bytes, cheap to compute.

    ``marshal`` (format 2, which never shares repeated objects) writes every string as its UTF-8 bytes plus
    a 5-byte header and every other value in at least one byte; JSON needs at most 6 bytes per character
    (the ``\\u001f`` escape) and a few bytes per number, literal, separator or bracket. So the JSON size
    is at most 6 times the marshal size. Values ``marshal`` cannot write (which JSON cannot either, or
    only as something else) give an impossible size, so the caller falls back to ``json.dumps``.
    """
    try:
        return 6 * len(_marshal_dumps(obj, 2))
    except ValueError:
        return MAX_OBJECT_BYTES * 1000


def _exact_size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8"))


class Connector:
    """A connector: its spec (``connector-spec.json``) and the handlers registered for its commands.

    ``Connector(path)`` takes the connector folder, the spec file, or an already loaded :class:`Spec`.
    The slug (the key the portal stores) defaults to the folder name.
    """

    def __init__(self, folder_or_spec_path: str | os.PathLike[str] | Spec, *, slug: str | None = None):
        if isinstance(folder_or_spec_path, Spec):
            self.spec = folder_or_spec_path
        else:
            self.spec = load_spec(folder_or_spec_path)
        folder = self.spec.folder
        self.slug: str = slug or (folder.name if folder is not None else self.spec.name)
        self.handlers: dict[str, Handler] = {}
        self.logger = logging.getLogger(f"connectors.{self.slug}")

    def __repr__(self) -> str:
        return f"<Connector {self.slug!r} ({self.spec.name})>"

    # -- description ---------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.label

    @property
    def folder(self) -> Path | None:
        return self.spec.folder

    @property
    def commands(self) -> list[str]:
        """Commands declared in the spec that have a handler."""
        return [c for c in self.spec.commands if c in self.handlers]

    def supports(self, command: str) -> bool:
        return command in self.handlers and self.spec.supports(command)

    # -- registration --------------------------------------------------------------------------------

    def command(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator registering the handler of ``name`` (a command declared in the spec)."""
        if not self.spec.supports(name):
            raise ValueError(f"command {name} is not declared in the commands of connector {self.slug}")

        def register(handler: Handler) -> Handler:
            self.handlers[name] = handler
            return handler

        return register

    # -- config --------------------------------------------------------------------------------------

    def validate_config(self, config: Any) -> dict[str, Any]:
        """Check a connection config against the spec; return a normalised copy. Raises ``ConfigError``."""
        return self.spec.validate_config(config)

    def resolve_secrets(
        self, config: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Replace ``{"$env": NAME}`` secret references by their values. Raises ``SecretError``."""
        return self.spec.resolve_secrets(config, environ)

    # -- execution -----------------------------------------------------------------------------------

    def invoke(
        self,
        command: str,
        config: Any,
        input: Any = None,
        *,
        should_cancel: Callable[[], bool] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> tuple[list[Any], Result]:
        """Run a command and collect its outputs in a list (tests, small commands)."""
        outputs: list[Any] = []

        def emit(kind: str, data: Any) -> None:
            if kind == "output":
                outputs.append(data)

        result = self.execute(command, config, input, emit=emit, should_cancel=should_cancel, environ=environ)
        return outputs, result

    def execute(
        self,
        command: str,
        config: Any,
        input: Any = None,
        *,
        emit: Emit,
        should_cancel: Callable[[], bool] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Result:
        """Run ``command``, streaming every message to ``emit(kind, data)`` as it is produced.

        Secret references ``{"$env": NAME}`` resolve against ``environ`` (default: the process environment).

        ``kind`` is ``"output"`` (data: the object) or ``"keepAlive"`` (data: ``None``). Returns a
        :class:`Result` whose ``state`` is the last state saved, only when the handler finished.
        Raises :class:`UnsupportedCommand`, ``ConfigError``/``SecretError``, :class:`InputError`,
        :class:`OutputError`, :class:`StateError`, :class:`Cancelled`, or :class:`ConnectorError`
        wrapping any other exception of the handler; all carry ``command`` and ``connector``.
        """
        try:
            return self._execute(command, config, input, emit, should_cancel, environ)
        except ConnectorError as exc:
            if exc.command is None:
                exc.command = command
            if exc.connector is None:
                exc.connector = self.slug
            raise

    def _execute(
        self,
        command: str,
        config: Any,
        input: Any,
        emit: Emit,
        should_cancel: Callable[[], bool] | None,
        environ: Mapping[str, str] | None = None,
    ) -> Result:
        started = time.perf_counter()
        handler = self.handlers.get(command)
        if handler is None or not self.spec.supports(command):
            raise UnsupportedCommand(f"unsupported command {command} for connector {self.slug}")
        config = self.resolve_secrets(self.validate_config(config), environ)
        input = self._check_input(command, input)
        spec = self.spec

        # -- output validation ----------------------------------------------------------------------
        compound = spec.key_type == "compound"
        if command in ACCOUNT_OUTPUT_COMMANDS:
            kind_of_output = "account"
        elif command in ENTITLEMENT_OUTPUT_COMMANDS:
            kind_of_output = "entitlement"
        else:
            kind_of_output = None
        entitlement_types = frozenset(spec.entitlement_schemas)
        default_type = input.get("type") if command in (ENTITLEMENT_LIST, ENTITLEMENT_READ) else None

        def fail(obj: Any, index: int, fld: str, problem: str) -> OutputError:
            ident = obj.get("identity") if type(obj) is dict else None
            ref = f"{ident!r}" if type(ident) is str and ident else f"#{index}"
            return OutputError(f"output object {ref}: {fld} {problem}", object_ref=ref, field=fld)

        def check(obj: Any, index: int) -> None:
            if type(obj) is not dict:
                raise OutputError(
                    f"output object #{index}: must be an object, got {type(obj).__name__}",
                    object_ref=f"#{index}",
                )
            if kind_of_output is None:
                if _size_bound(obj) > MAX_OBJECT_BYTES:
                    check_size(obj, index)
                return
            identity = obj.get("identity")
            if type(identity) is not str or not identity:
                raise fail(obj, index, "identity", "must be a non-empty string")
            key = obj.get("key")
            if compound:
                inner = key.get("compound") if type(key) is dict and len(key) == 1 else None
                if (
                    type(inner) is not dict
                    or type(inner.get("lookupId")) is not str
                    or type(inner.get("uniqueId")) is not str
                    or not inner["lookupId"]
                    or not inner["uniqueId"]
                ):
                    raise fail(obj, index, "key", 'must be {"compound": {"lookupId": str, "uniqueId": str}}')
            else:
                inner = key.get("simple") if type(key) is dict and len(key) == 1 else None
                if type(inner) is not dict or type(inner.get("id")) is not str or not inner["id"]:
                    raise fail(obj, index, "key", 'must be {"simple": {"id": str}}')
            attributes = obj.get("attributes")
            if type(attributes) is not dict and not (attributes is None and obj.get("deleted") is True):
                raise fail(obj, index, "attributes", "must be an object")
            if kind_of_output == "entitlement":
                ent_type = obj.get("type")
                if ent_type is None and default_type is not None:
                    obj["type"] = ent_type = default_type
                if ent_type not in entitlement_types:
                    declared = ", ".join(sorted(entitlement_types)) or "none"
                    raise fail(
                        obj,
                        index,
                        "type",
                        f"must be a declared entitlement type ({declared}), got {ent_type!r}",
                    )
                if "resource" in obj or "role" in obj or "implies" in obj:
                    check_hierarchy(obj, index)
            if _size_bound(obj) > MAX_OBJECT_BYTES:
                check_size(obj, index)

        def check_hierarchy(obj: dict, index: int) -> None:
            for fld in ("resource", "role"):
                part = obj.get(fld)
                if part is None:
                    continue
                if type(part) is not dict or type(part.get("id")) is not str or not part["id"]:
                    raise fail(obj, index, fld, 'must be an object with a non-empty string "id"')
            implies = obj.get("implies")
            if implies is not None and (
                type(implies) is not list or not all(type(i) is str for i in implies)
            ):
                raise fail(obj, index, "implies", "must be a list of entitlement identities")

        def check_size(obj: dict, index: int) -> None:
            try:
                size = _exact_size(obj)
            except (TypeError, ValueError) as exc:
                fld = "attributes"
                for k, v in obj.items():
                    try:
                        json.dumps(v, allow_nan=False)
                    except (TypeError, ValueError):
                        fld = k
                        break
                raise fail(obj, index, fld, f"is not JSON-serialisable ({exc})") from None
            if size > MAX_OBJECT_BYTES:
                raise fail(obj, index, "size", f"is {size} bytes, more than the {MAX_OBJECT_BYTES} allowed")

        # -- filters ----------------------------------------------------------------------------------
        filtering = command in LIST_COMMANDS and (
            bool(config.get(FILTER_KEY)) or any(k.endswith(FILTER_SUFFIX) and v for k, v in config.items())
        )
        matchers_by_type: dict[Any, Callable[[Any], bool] | None] = {}
        if filtering:
            from .filter import Filter

            compiled: dict[str, Callable[[Any], bool]] = {}
            for k, v in config.items():
                if v and (k == FILTER_KEY or k.endswith(FILTER_SUFFIX)):
                    compiled[k] = Filter.compile(v).matches
            global_matcher = compiled.get(FILTER_KEY)

            def matcher_for(object_type: Any) -> Callable[[Any], bool] | None:
                typed = compiled.get(f"{object_type}{FILTER_SUFFIX}")
                if typed is None or global_matcher is None:
                    m = typed or global_matcher
                else:

                    def m(attrs: Any, _a=global_matcher, _b=typed) -> bool:
                        return _a(attrs) or _b(attrs)

                matchers_by_type[object_type] = m
                return m

            if command == "std:account:list":
                account_matcher = matcher_for("account")
                filtering = account_matcher is not None
        else:
            account_matcher = None
        is_account_list = command == "std:account:list"

        # -- the response -----------------------------------------------------------------------------
        sent = 0
        filtered = 0
        calls = 0
        skipped_in_row = 0
        keep_alives = 0
        cancel_countdown = CANCEL_CHECK_EVERY
        saved: list[dict[str, Any]] = []

        def keep_alive() -> None:
            nonlocal keep_alives
            keep_alives += 1
            emit("keepAlive", None)
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"{command} cancelled")

        def send(obj: Any) -> None:
            nonlocal sent, filtered, calls, skipped_in_row, cancel_countdown
            check(obj, calls)
            calls += 1
            if should_cancel is not None:
                cancel_countdown -= 1
                if cancel_countdown <= 0:
                    cancel_countdown = CANCEL_CHECK_EVERY
                    if should_cancel():
                        raise Cancelled(f"{command} cancelled")
            if filtering and obj.get("deleted") is not True:
                if is_account_list:
                    m = account_matcher
                else:
                    t = obj.get("type")
                    m = matchers_by_type[t] if t in matchers_by_type else matcher_for(t)
                if m is not None and m(obj["attributes"]):
                    filtered += 1
                    skipped_in_row += 1
                    if skipped_in_row >= KEEPALIVE_EVERY_SKIPPED:
                        skipped_in_row = 0
                        keep_alive()
                    return
            skipped_in_row = 0
            emit("output", obj)
            sent += 1

        def save_state(state: Any) -> None:
            if type(state) is not dict:
                raise StateError(f"state must be a JSON object (dict), got {type(state).__name__}")
            try:
                json.dumps(state, allow_nan=False)
            except (TypeError, ValueError) as exc:
                raise StateError(f"state is not JSON-serialisable: {exc}") from None
            saved[:] = [state]

        context = Context(
            connector=self,
            command=command,
            config=config,
            logger=self.logger,
            stateful=input.get("stateful", False),
            state=input.get("state"),
        )
        res = Response(send, save_state, keep_alive)
        try:
            handler(context, input, res)
        except ConnectorError:
            raise
        except Exception as exc:
            raise ConnectorError(
                f"{command} failed in connector {self.slug}: {type(exc).__name__}: {exc}",
                command=command,
                connector=self.slug,
            ) from exc
        return Result(
            command=command,
            state=saved[0] if saved else None,
            sent=sent,
            filtered=filtered,
            keep_alives=keep_alives,
            elapsed=time.perf_counter() - started,
        )

    def _check_input(self, command: str, input: Any) -> dict[str, Any]:
        if input is None:
            input = {}
        elif not isinstance(input, Mapping):
            raise InputError(f"input must be a JSON object, got {type(input).__name__}")
        input = dict(input)
        if command in LIST_COMMANDS:
            stateful = input.get("stateful", False)
            if isinstance(stateful, str):
                if stateful.strip().lower() not in ("true", "false", ""):
                    raise InputError(f"input 'stateful' must be true or false, got {stateful!r}")
                stateful = stateful.strip().lower() == "true"
            elif not isinstance(stateful, bool):
                raise InputError(f"input 'stateful' must be true or false, got {stateful!r}")
            stateful = stateful and self.spec.supports_stateful
            state = input.get("state")
            if state is not None and not isinstance(state, dict):
                raise InputError(f"input 'state' must be a JSON object, got {type(state).__name__}")
            input["stateful"] = stateful
            input["state"] = state
        if command in IDENTITY_COMMANDS:
            identity = input.get("identity")
            if not isinstance(identity, str) or not identity:
                raise InputError(f"{command} needs input 'identity' (a non-empty string)")
        single = len(self.spec.entitlement_schemas) == 1
        if command in (ENTITLEMENT_LIST, ENTITLEMENT_READ) and input.get("type") is None and single:
            input["type"] = next(iter(self.spec.entitlement_schemas))
        if command in (ENTITLEMENT_LIST, ENTITLEMENT_READ) and input.get("type") is not None:
            if input["type"] not in self.spec.entitlement_schemas:
                declared = ", ".join(self.spec.entitlement_schemas) or "none"
                raise InputError(
                    f"input 'type' {input['type']!r} is not a declared entitlement type ({declared})"
                )
        return input
