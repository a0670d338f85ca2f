"""Command line for connector authors.

    python -m connectors list
    python -m connectors invoke <slug> <command> --config FILE [--input JSON|@FILE]
    python -m connectors check-spec PATH

``invoke`` prints one NDJSON line per message, ``{"type": "output"|"keepAlive"|"state", "data": ...}``; the
state line comes once, at the end, when the command succeeded and saved a state. On error it prints one
line on stderr and exits with status 1 (2 for usage errors, 130 when interrupted).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from . import registry
from .sdk.errors import ConnectorError, UnknownConnector, one_line
from .sdk.spec import load_spec


class _Fail(Exception):
    pass


def _read_json(text: str, what: str) -> Any:
    if text.startswith("@"):
        text = _read_file(text[1:], what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Fail(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def _read_file(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _Fail(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _cmd_list(args: argparse.Namespace) -> int:
    connectors = registry.discover()
    out = sys.stdout
    for slug, connector in sorted(connectors.items()):
        out.write(f"{slug}\t{connector.name}\t{' '.join(connector.commands)}\n")
    for slug, message in sorted(registry.errors().items()):
        sys.stderr.write(f"warning: connector {slug} not loaded: {message}\n")
    return 0


def _cmd_check_spec(args: argparse.Namespace) -> int:
    spec = load_spec(args.path)
    print(
        f"{spec.name}: {len(spec.commands)} commands, key {spec.key_type}, "
        f"{len(spec.config_items)} config items"
    )
    for warning in spec.warnings:
        print(f"warning: {warning}")
    return 0


def _cmd_invoke(args: argparse.Namespace) -> int:
    connector = registry.get(args.slug)
    config = _read_json(_read_file(args.config, "config file"), f"config file {args.config}")
    payload = _read_json(args.input, "--input") if args.input is not None else None
    out = sys.stdout
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def emit(kind: str, data: Any) -> None:
        out.write(dumps({"type": kind, "data": data}))
        out.write("\n")

    result = connector.execute(args.command, config, payload, emit=emit)
    if result.state is not None:
        emit("state", result.state)
    out.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m connectors", description="Run and inspect connectors.")
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("list", help="list installed connectors (slug, name, commands)")
    p.set_defaults(run=_cmd_list)
    p = sub.add_parser("invoke", help="run one command and print its messages as NDJSON")
    p.add_argument("slug")
    p.add_argument("command", help="e.g. std:account:list")
    p.add_argument("--config", required=True, metavar="FILE", help="connection config (a JSON object)")
    p.add_argument("--input", metavar="JSON", help="command input as JSON, or @FILE")
    p.set_defaults(run=_cmd_invoke)
    p = sub.add_parser("check-spec", help="load a connector-spec.json and print its warnings")
    p.add_argument("path")
    p.set_defaults(run=_cmd_check_spec)
    args = parser.parse_args(argv)
    # Connectors that fail to load are reported by `list` and by `invoke` when asked for, not logged.
    logging.getLogger("connectors.registry").disabled = True
    try:
        return args.run(args)
    except (ConnectorError, UnknownConnector, _Fail) as exc:
        message = one_line(exc)
        connector, command = getattr(exc, "connector", None), getattr(exc, "command", None)
        if connector and command and f"connector {connector}" not in message:
            message = f"{connector} {command}: {message}"
        return _fail(message, 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")  # the reader went away; nothing more to say
        return 1
    except Exception as exc:
        return _fail(f"unexpected {type(exc).__name__}: {one_line(exc)}", 1)


def _fail(message: str, status: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
