"""Sync benchmark: the demo connector's organisation synced into PostgreSQL.

    .venv/bin/python bench/sync_bench.py [--scale 1.0] [--database-url postgres://postgres@127.0.0.1:5432/gov_bench]

At scale 1 the organisation has 100,000 accounts, 17,000 resources, 51,000 roles and
1,000,000 permissions. The benchmark (in a database of its own, recreated each run):

1. plain COPY of the same rows into copies of the inventory tables (with their indexes): the baseline;
2. a full sync at 10% of the size and at full size, each in a fresh process (wall time, objects/s, peak RSS);
   each measurement starts after a CHECKPOINT, so none pays for writing out the rows of the one before;
3. a second identical full sync (rows written must be 0);
4. a 1% delta (stateful run).

Targets (2-core machine): full sync of 1M permissions ≤ 60 s and ≤ 1.5× the COPY baseline; peak RSS
≤ 300 MiB and flat from 10% to full size; the 1% delta ≤ 10% of the full sync's time; the second full
sync writes no rows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

USERS, GROUPS, MEMBERSHIPS = 100_000, 17_000, 10


def demo_config(scale: float) -> dict:
    return {
        "url": "https://demo.example.com",
        "connectionOption": "token",
        "apiToken": "demo",
        "users": max(1, int(USERS * scale)),
        "groups": max(1, int(GROUPS * scale)),
        "memberships": MEMBERSHIPS,
        "seed": 1,
        "mutation": 0.01,
    }


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")
    # Production settings (DEBUG off: no query log), with throwaway keys.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production-0123456789")
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", "x4Qy2m9n2Ty1Fbf1Vd8o2pXQ0s8x3Hn0J6b4Jb1o5kE=")
    os.environ.setdefault("VAR_DIR", "/tmp/gov-bench-var")
    os.environ.pop("CELERY_BROKER_URL", None)
    import django

    django.setup()


def rows_written() -> int:
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT pg_stat_force_next_flush()")
        c.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE relname IN ('integrations_resource', 'integrations_role', 'integrations_account', 'integrations_permission', 'integrations_roleimplication')"
        )
        return int(c.fetchone()[0])


def peak_rss_mib() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_sync(args) -> dict:
    """One sync in this (fresh) process; prints its figures as JSON."""
    setup_django(args.database_url)
    from django.db import connection

    from integrations.models import Integration
    from integrations.sync import sync_integration

    integration = Integration.objects.get(name=args.name)
    integration.connector  # noqa: B018 - a worker imports its connectors at start-up (governance/celery.py)
    with connection.cursor() as c:
        c.execute("SELECT pg_stat_clear_snapshot()")
    written_before = rows_written()
    start = time.perf_counter()
    result = sync_integration(actor=None, integration=integration, full=args.full)
    seconds = time.perf_counter() - start
    time.sleep(0.6)  # statistics are flushed at most every 500 ms
    return {
        "seconds": seconds,
        "counts": result.counts,
        "objects": result.counts.get("read", 0),
        "rows_written": rows_written() - written_before,
        "peak_rss_mib": peak_rss_mib(),
    }


def checkpoint() -> None:
    """Write out what earlier steps left in the buffers, so no measurement pays for the one before it."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("CHECKPOINT")


def run_phase(args, name: str, full: bool | None) -> dict:
    checkpoint()
    cmd = [sys.executable, __file__, "--phase", "sync", "--name", name, "--database-url", args.database_url]
    if full is not None:
        cmd.append("--full" if full else "--delta")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def create_integration(name: str, scale: float, stateful: bool) -> int:
    from integrations import services

    integration = services.integration_create(
        actor=None,
        application="demo",
        name=name,
        connection_config=demo_config(scale),
        connector_attributes={"stateful": stateful},
    )
    return integration.pk


def baseline_copy(scale: float) -> dict:
    """COPY the rows a full sync writes, generated beforehand, into copies of the tables."""
    from django.db import connection

    from connectors.registry import get

    demo = get("demo")
    config = demo_config(scale)
    entitlements, _ = demo.invoke("std:entitlement:list", config)
    accounts, _ = demo.invoke("std:account:list", config)
    spec = demo.spec
    resources = {}
    roles = []
    for n, e in enumerate(entitlements):
        m = spec.map_entitlement(e)
        resources.setdefault(
            m.resource_id, (len(resources) + 1, m.resource_id, m.resource_name, m.resource_kind)
        )
        roles.append(
            (n + 1, resources[m.resource_id][0], e["identity"], m.role_name, json.dumps(e["attributes"]))
        )
    role_ids = {r[2]: r[0] for r in roles}
    account_rows, permission_rows = [], []
    for n, a in enumerate(accounts, start=1):
        account_rows.append(
            (n, a["identity"], a["identity"], a["attributes"].get("email", ""), json.dumps(a["attributes"]))
        )
        permission_rows.extend((n, role_ids[g]) for g in spec.account_entitlements(a) if g in role_ids)
    del entitlements, accounts
    tables = ("resource", "role", "account", "permission")
    with connection.cursor() as c:
        for t in tables:
            c.execute(f"DROP TABLE IF EXISTS bench_{t}")
            c.execute(f"CREATE TABLE bench_{t} (LIKE integrations_{t} INCLUDING ALL)")
        checkpoint()
        start = time.perf_counter()
        copies = {
            "resource": ("id, integration_id, external_id, name, kind, description, requestable, override_allowed_durations,"
                         " allowed_durations, attributes, first_seen_at, last_seen_at, created_at, updated_at",
                         ((r[0], 1, r[1], r[2], r[3], "", True, False, "[]", "{}", "now", "now", "now", "now")
                          for r in resources.values())),
            "role": ("id, integration_id, resource_id, external_id, name, description, requestable,"
                     " override_allowed_durations, allowed_durations, attributes, first_seen_at, last_seen_at,"
                     " created_at, updated_at",
                     ((r[0], 1, r[1], r[2], r[3], "", True, False, "[]", r[4], "now", "now", "now", "now")
                      for r in roles)),
            "account": ("id, integration_id, external_id, identity, email, attributes, enabled, first_seen_at,"
                        " last_seen_at, created_at, updated_at",
                        ((a[0], 1, a[1], a[2], a[3], a[4], True, "now", "now", "now", "now") for a in account_rows)),
            "permission": ("integration_id, account_id, role_id, source, granted_at, last_seen_at",
                           ((1, p[0], p[1], "external", "now", "now") for p in permission_rows)),
        }  # fmt: skip
        for t, (columns, rows) in copies.items():
            with c.cursor.copy(f"COPY bench_{t} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        seconds = time.perf_counter() - start
        for t in tables:
            c.execute(f"DROP TABLE bench_{t}")
    return {"seconds": seconds, "rows": len(resources) + len(roles) + len(account_rows) + len(permission_rows),
            "permissions": len(permission_rows)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/gov_bench")
    parser.add_argument("--phase", default="all")
    parser.add_argument("--name", default="")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--full", dest="full", action="store_true", default=None)
    mode.add_argument("--delta", dest="full", action="store_false")
    args = parser.parse_args()
    if args.phase == "sync":
        print(json.dumps(phase_sync(args)))
        return

    import psycopg

    admin_url, db = args.database_url.rsplit("/", 1)
    with psycopg.connect(f"{admin_url}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    setup_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    small = create_integration("bench-10pct", args.scale / 10, stateful=False)
    big = create_integration("bench-full", args.scale, stateful=True)
    assert small and big

    print(f"demo organisation at scale {args.scale}: {demo_config(args.scale)}")
    base = baseline_copy(args.scale)
    print(
        f"baseline COPY of {base['rows']:,} rows ({base['permissions']:,} permissions): {base['seconds']:.1f} s"
    )
    figures = {}
    for label, name, full in (
        ("full sync, 10% size", "bench-10pct", True),
        ("full sync, full size", "bench-full", True),
        ("second identical full sync", "bench-full", True),
        ("1% delta", "bench-full", False),
    ):
        r = run_phase(args, name, full)
        figures[label] = r
        print(
            f"{label:28} {r['seconds']:7.1f} s  {r['objects'] / r['seconds']:>9,.0f} objects/s  "
            f"peak RSS {r['peak_rss_mib']:6.1f} MiB  rows written {r['rows_written']:,}"
        )
        print(f"{'':28} counts: {r['counts']}")
    full = figures["full sync, full size"]
    small_rss = figures["full sync, 10% size"]["peak_rss_mib"]
    delta = figures["1% delta"]
    checks = [
        ("full sync ≤ 60 s", full["seconds"] <= 60, f"{full['seconds']:.1f} s"),
        ("full sync ≤ 1.5× COPY", full["seconds"] <= 1.5 * base["seconds"], f"{full['seconds'] / base['seconds']:.2f}×"),
        ("peak RSS ≤ 300 MiB", full["peak_rss_mib"] <= 300, f"{full['peak_rss_mib']:.0f} MiB"),
        ("peak RSS flat (10% → 100%, within 25%)", full["peak_rss_mib"] <= small_rss * 1.25,
         f"{small_rss:.0f} → {full['peak_rss_mib']:.0f} MiB"),
        ("1% delta ≤ 10% of the full sync", delta["seconds"] <= 0.1 * full["seconds"],
         f"{delta['seconds'] / full['seconds']:.1%}"),
        ("second full sync writes no rows", figures["second identical full sync"]["rows_written"] == 0,
         f"{figures['second identical full sync']['rows_written']:,} rows"),
    ]  # fmt: skip
    print("\ntargets:")
    for label, ok, value in checks:
        print(f"  {'met' if ok else 'NOT MET':8} {label}: {value}")


if __name__ == "__main__":
    main()
