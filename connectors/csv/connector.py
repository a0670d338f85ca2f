"""The delimited-file connector: an HR export (CSV) as a read-only identity source (see ``README.md``).

* Each row is a person's **account**: its identity and key are the value of the identity column; its
  attributes are the row's cells under their column names, stripped of surrounding spaces, empty cells
  left out. The display name column is also given as ``displayName`` and the groups column (by default a
  column named ``groups``), split on the groups delimiter, as ``groups`` (the account schema's group
  attribute), since the portal reads those by name.
* The distinct groups are the **entitlements** (type ``group``), each a resource of its own with a
  ``member`` role.
* The file is read row by row with the ``csv`` module and never held whole, so a listing streams in
  constant memory. One exception grows with the file: the identities already read, kept to refuse a
  duplicate before the listing ends (a failed listing leaves the portal's inventory untouched). They are kept
  as 64-bit hashes in a flat table (8 to 16 bytes a row, a tenth of a ``set`` of strings); a hash seen twice
  is confirmed by reading the file again up to that row, which also finds the first line of a duplicate.
* Every problem with the file is one :class:`ConnectorError` naming the file and the line.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.sdk import ConfigError, Connector, ConnectorError, ObjectNotFound
from connectors.sdk.config import config_text

connector = Connector(Path(__file__).parent)

GROUP_TYPE = "group"
GROUPS = "groups"  # the account schema's group attribute
DISPLAY_NAME = "displayName"
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
# Encodings offered by the spec, and the codec reading each. All are ASCII-compatible, so a file splits
# into lines on b"\n" before decoding, and a decoding error can name its line.
CODECS = {
    "utf-8": "utf-8",
    "utf-8-sig": "utf-8",
    "latin-1": "latin-1",
    "iso-8859-15": "iso-8859-15",
    "cp1252": "cp1252",
}
MAX_CONTENT_CHARS = 1024 * 1024
"""Largest ``content`` (pasted CSV text); larger files go by path."""
MAX_LINE_BYTES = 1024 * 1024
"""Longest line read from a file: a file without line breaks (or with lone carriage returns) fails clearly
instead of being read whole."""
KEEP_ALIVE_ROWS = 10_000
"""Commands that read many rows and send few (entitlements, read) signal progress this often."""
LISTED_COLUMNS = 20
"""Column names quoted in a message, at most."""


# -- settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    path: Path | None
    content: str | None
    delimiter: str
    encoding: str
    identity_column: str
    name_column: str | None
    groups_column: str | None
    groups_delimiter: str

    @property
    def where(self) -> str:
        """How messages name the source."""
        return str(self.path) if self.path is not None else "the pasted CSV"


def settings(config: dict[str, Any]) -> Settings:
    """The connection's settings from a config ``validate_config`` accepted (which requires the item of
    the chosen connection option and checks the types and choices)."""
    path = config_text(config, "path")
    content = config.get("content") or None
    if path and content:
        raise ConfigError(
            "give the file's path or its content, not both (config items 'path' and 'content')",
            item="content",
        )
    if path and not Path(path).is_absolute():
        raise ConfigError(
            f"config item 'path' (File path) must be an absolute path, got {path!r}", item="path"
        )
    if content is not None and len(content) > MAX_CONTENT_CHARS:
        raise ConfigError(
            f"config item 'content' (CSV content) holds {len(content):,} characters, more than the "
            f"{MAX_CONTENT_CHARS:,} allowed: give larger files by path",
            item="content",
        )
    identity = config_text(config, "identityColumn")
    if not identity:
        raise ConfigError(
            "missing required config item 'identityColumn' (Identity column)", item="identityColumn"
        )
    return Settings(
        path=Path(path) if path else None,
        content=content,
        delimiter=config.get("delimiter") or ",",
        encoding=config.get("encoding") or "utf-8",
        identity_column=identity,
        name_column=config_text(config, "nameColumn"),
        groups_column=config_text(config, "groupsColumn"),
        groups_delimiter=config.get("groupsDelimiter") or ";",
    )


# -- reading -------------------------------------------------------------------------------------------


def _lines(s: Settings) -> Iterator[str]:
    """The source's lines as text. A file is decoded a line at a time, so a wrong encoding names its line."""
    if s.path is None:
        yield from io.StringIO(s.content, newline="")
        return
    decode = codecs.getdecoder(CODECS[s.encoding])
    try:
        file = open(s.path, "rb")  # closed by the with below, also when the reader stops early
    except OSError as exc:
        raise ConnectorError(f"cannot read {s.path}: {exc.strerror or exc}") from None
    with file:
        number = 0
        while raw := file.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                raise ConnectorError(
                    f"{s.where}, line {number}: longer than {MAX_LINE_BYTES:,} bytes "
                    "(is it a text file with one row a line?)"
                )
            try:
                text = decode(raw)[0]
            except UnicodeDecodeError as exc:
                raise ConnectorError(
                    f"{s.where}, line {number}: not valid {s.encoding} (byte 0x{raw[exc.start]:02x} at "
                    f"position {exc.start + 1}); set encoding to the file's, e.g. latin-1 or cp1252"
                ) from None
            if number == 1 and text.startswith("\ufeff"):
                text = text[1:]  # a byte-order mark, as spreadsheets write before UTF-8
            yield text


def _records(s: Settings) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of every record that is not a blank line, the header first. ``line`` is where the
    record starts (a quoted cell may hold line breaks)."""
    lines = _lines(s)
    with contextlib.closing(lines):
        reader = csv.reader(lines, delimiter=s.delimiter, strict=True)
        end = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ConnectorError(f"{s.where}, line {end + 1}: cannot read the row: {exc}") from None
            start, end = end + 1, reader.line_num
            if cells:
                yield start, cells


def _short(text: str, limit: int = 60) -> str:
    """A value from the file as a message quotes it: at most ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listing(names: list[str]) -> str:
    shown = ", ".join(_short(n, 40) for n in names[:LISTED_COLUMNS])
    return shown + (f" and {len(names) - LISTED_COLUMNS} more" if len(names) > LISTED_COLUMNS else "")


@dataclass(frozen=True)
class Header:
    """The checked header row: column names, and where the configured columns are."""

    line: int
    columns: list[str]
    identity: int
    name: int | None
    groups: int | None
    groups_column: str | None  # groupsColumn, else a column named groups

    def describe(self) -> str:
        return f"{len(self.columns)} column{'s' if len(self.columns) != 1 else ''} ({_listing(self.columns)})"


def _header(s: Settings, records: Iterator[tuple[int, list[str]]]) -> Header:
    try:
        line, cells = next(records)
    except StopIteration:
        raise ConnectorError(f"{s.where} is empty: its first row must name the columns") from None
    columns = [c.strip() for c in cells]
    where = f"{s.where}, line {line} (the header)"
    if len(columns) == 1 and columns[0] != s.identity_column:
        used = [d for d in DELIMITERS if d != s.delimiter and d in columns[0]]
        seems = f"; the file seems to use {DELIMITERS[used[0]]} ({used[0]!r})" if used else ""
        raise ConnectorError(
            f"{where}: a single column {_short(columns[0])!r} with the delimiter {DELIMITERS[s.delimiter]} "
            f"({s.delimiter!r}){seems}: check the delimiter"
        )
    index: dict[str, int] = {}
    for i, name in enumerate(columns):
        if not name:
            raise ConnectorError(f"{where}: column {i + 1} has no name")
        if name in index:
            raise ConnectorError(
                f"{where}: column {_short(name)!r} is named twice (columns {index[name] + 1} and {i + 1})"
            )
        index[name] = i

    def find(column: str | None, item: str) -> int | None:
        if column is None:
            return None
        if column not in index:
            raise ConnectorError(
                f"{s.where}: no column {column!r} ({item}) in the header; its columns are {_listing(columns)}"
            )
        return index[column]

    identity = find(s.identity_column, "identityColumn")
    name = find(s.name_column, "nameColumn")
    groups_column = s.groups_column or (GROUPS if GROUPS in index else None)
    if groups_column == s.identity_column:
        raise ConnectorError(
            f"{where}: column {groups_column!r} cannot be both the identity column and the groups column"
        )
    groups = find(groups_column, "groupsColumn")
    for fixed, column, item in (
        (GROUPS, groups_column, "groupsColumn"),
        (DISPLAY_NAME, s.name_column, "nameColumn"),
    ):
        if fixed in index and column not in (None, fixed):
            raise ConnectorError(
                f"{where}: column {fixed!r} clashes with the {fixed} attribute taken from column {column!r} "
                f"({item}): rename one of them, or set {item} to {fixed!r}"
            )
    header = Header(line, columns, identity, name, groups, groups_column)
    return header


class _Seen:
    """Hashes of the identities already read, in an open-addressing table of 64-bit slots (0 marks a free
    one). ``add`` says whether the hash was there: a duplicate, or (about once in 10^10 pairs of values)
    another value with the same hash, which the caller tells apart."""

    __slots__ = ("table", "mask", "used")

    def __init__(self) -> None:
        self.table = array("q", [0]) * 1024
        self.mask = 1023
        self.used = 0

    def add(self, h: int) -> bool:
        h = h or 1
        table, mask = self.table, self.mask
        i = h & mask
        while (slot := table[i]) != 0:
            if slot == h:
                return True
            i = (i + 1) & mask
        table[i] = h
        self.used += 1
        if self.used * 2 > mask:
            self._grow()
        return False

    def _grow(self) -> None:
        old = self.table
        self.table = table = array("q", [0]) * (2 * len(old))
        self.mask = mask = len(table) - 1
        for h in old:
            if h:
                i = h & mask
                while table[i] != 0:
                    i = (i + 1) & mask
                table[i] = h


class Table:
    """A pass over the source: its checked header, then its rows as ``(line, identity, attributes)``."""

    def __init__(self, s: Settings):
        self.settings = s
        self._records = _records(s)
        try:
            self.header = _header(s, self._records)
        except BaseException:
            self._records.close()
            raise

    def close(self) -> None:
        self._records.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def rows(self, keep_alive: Callable[[], None] | None = None) -> Iterator[tuple[int, str, dict[str, Any]]]:
        s, header = self.settings, self.header
        columns, width = header.columns, len(header.columns)
        identity_at, name_at, groups_at = header.identity, header.name, header.groups
        split = s.groups_delimiter
        seen = _Seen()
        count = 0
        for line, cells in self._records:
            if len(cells) != width:
                raise ConnectorError(
                    f"{s.where}, line {line}: {len(cells)} cell{'s' if len(cells) != 1 else ''} "
                    f"where the header has {width} columns"
                )
            identity = cells[identity_at].strip()
            if not identity:
                raise ConnectorError(
                    f"{s.where}, line {line}: the identity column {s.identity_column!r} is empty"
                )
            if seen.add(hash(identity)):
                first = _first_line(s, identity, before=line)
                if first is not None:
                    raise ConnectorError(
                        f"{s.where}: {s.identity_column} {_short(identity)!r} is on line {first} and again on "
                        f"line {line}; the identity column must be unique"
                    )
            attributes: dict[str, Any] = {}
            for name, cell in zip(columns, cells, strict=True):
                value = cell.strip()
                if value:
                    attributes[name] = value
            if name_at is not None and (display := attributes.get(columns[name_at])):
                attributes[DISPLAY_NAME] = display
            if groups_at is not None:
                held = [g.strip() for g in attributes.get(columns[groups_at], "").split(split)]
                held = list(dict.fromkeys(g for g in held if g))
                if held:
                    attributes[GROUPS] = held
                else:
                    attributes.pop(GROUPS, None)  # a groups column named groups, of delimiters only
            yield line, identity, attributes
            count += 1
            if keep_alive is not None and count % KEEP_ALIVE_ROWS == 0:
                keep_alive()


def _first_line(s: Settings, identity: str, *, before: int) -> int | None:
    """The line of the first row holding ``identity`` before line ``before`` (rows up to there were checked
    by the pass asking), or ``None`` when there is none: the hashes of two values met."""
    records = _records(s)
    with contextlib.closing(records):
        header = _header(s, records)
        for line, cells in records:
            if line >= before:
                return None
            if cells[header.identity].strip() == identity:
                return line
    return None


def _account(identity: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"identity": identity, "key": {"simple": {"id": identity}}, "attributes": attributes}


def _group(name: str) -> dict[str, Any]:
    return {
        "identity": name,
        "key": {"simple": {"id": name}},
        "type": GROUP_TYPE,
        "attributes": {"id": name, "name": name},
    }


# -- handlers ------------------------------------------------------------------------------------------


@connector.command("std:test-connection")
def test_connection(context, input, res):
    s = settings(context.config)
    with Table(s) as table:
        message = f"{s.where}: {table.header.describe()}; identity column {s.identity_column!r}"
    context.logger.info("%s", message)
    res.send({"message": message})


@connector.command("std:account:list")
def account_list(context, input, res):
    send = res.send
    with Table(settings(context.config)) as table:
        for _, identity, attributes in table.rows():
            send(_account(identity, attributes))


@connector.command("std:account:read")
def account_read(context, input, res):
    s = settings(context.config)
    wanted = input["identity"]
    with Table(s) as table:
        for _, identity, attributes in table.rows(res.keep_alive):
            if identity == wanted:
                res.send(_account(identity, attributes))
                return
    raise ObjectNotFound(f"no account {wanted!r} in {s.where}")


@connector.command("std:entitlement:list")
def entitlement_list(context, input, res):
    sent: set[str] = set()
    with Table(settings(context.config)) as table:
        for _, _, attributes in table.rows(res.keep_alive):
            for name in attributes.get(GROUPS, ()):
                if name not in sent:
                    sent.add(name)
                    res.send(_group(name))


@connector.command("std:account:discover-schema")
def discover_schema(context, input, res):
    """The account schema of this file: one string attribute per column, in the header's order."""
    s = settings(context.config)
    with Table(s) as table:
        header = table.header
    columns, groups_column = header.columns, header.groups_column
    attributes = [{"name": c, "type": "string", "description": f"Column {c}"} for c in columns if c != GROUPS]
    if s.name_column is not None and s.name_column != DISPLAY_NAME:
        attributes.append({"name": DISPLAY_NAME, "type": "string", "description": f"Column {s.name_column}"})
    if groups_column is not None:
        attributes.append(
            {
                "name": GROUPS,
                "type": "string",
                "multi": True,
                "entitlement": True,
                "schemaObjectType": GROUP_TYPE,
                "description": f"Column {groups_column}, split on {s.groups_delimiter!r}",
            }
        )
    schema = {
        "identityAttribute": s.identity_column,
        "displayAttribute": DISPLAY_NAME
        if s.name_column is not None or DISPLAY_NAME in columns
        else s.identity_column,
        "attributes": attributes,
    }
    if groups_column is not None:
        schema["groupAttribute"] = GROUPS
    res.send(schema)
