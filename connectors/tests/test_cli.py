"""``python -m connectors``: NDJSON output and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "connectors", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def write_config(tmp_path, name="config", **config) -> str:
    base = {"url": "https://demo.example.com", "apiToken": "demo", "users": 5, "groups": 2, "seed": 4}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**base, **config}))
    return str(path)


def test_invoke_prints_ndjson_with_state_last(tmp_path):
    proc = cli("invoke", "demo", "std:account:list", "--config", write_config(tmp_path))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [m["type"] for m in lines] == ["output"] * 5 + ["state"]
    assert lines[0]["data"]["identity"] == "u0000000"
    assert lines[-1]["data"] == {"generation": 0}
    assert proc.stderr == ""


def test_invoke_with_input_and_secret_reference(tmp_path):
    config = write_config(tmp_path, apiToken={"$env": "DEMO_TOKEN"}, mutation=0.2)
    state = '{"stateful": "true", "state": {"generation": 3}}'
    proc = cli(
        "invoke", "demo", "std:account:list", "--config", config, "--input", state, env={"DEMO_TOKEN": "demo"}
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert lines[-1] == {"type": "state", "data": {"generation": 4}}
    assert any(m["data"].get("deleted") for m in lines[:-1])


def test_errors_are_one_line_without_traceback(tmp_path):
    config = write_config(tmp_path)
    cases = [
        (
            ("invoke", "demo", "std:x", "--config", config),
            "error: unsupported command std:x for connector demo",
        ),
        (
            ("invoke", "nope", "std:account:list", "--config", config),
            "error: unknown connector 'nope' (known: ",
        ),
        (
            ("invoke", "demo", "std:account:list", "--config", str(tmp_path / "none.json")),
            "error: cannot read config",
        ),
        (
            ("invoke", "demo", "std:account:list", "--config", config, "--input", "{"),
            "error: --input is not valid JSON",
        ),
        (
            (
                "invoke",
                "demo",
                "std:test-connection",
                "--config",
                write_config(tmp_path, "host", url="https://x.invalid"),
            ),
            "error: demo std:test-connection: cannot reach the demo directory at https://x.invalid",
        ),
        (
            (
                "invoke",
                "demo",
                "std:account:list",
                "--config",
                write_config(tmp_path, "env", apiToken={"$env": "UNSET_X"}),
            ),
            "error: demo std:account:list: config item 'apiToken': environment variable UNSET_X is not set",
        ),
    ]
    for args, start in cases:
        proc = cli(*args)
        assert proc.returncode == 1, args
        assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(start), proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_list_shows_installed_connectors():
    proc = cli("list")
    assert proc.returncode == 0
    demo = next(line for line in proc.stdout.splitlines() if line.startswith("demo\t"))
    slug, name, commands = demo.split("\t")
    assert name == "Demo organisation" and "std:account:list" in commands.split()
