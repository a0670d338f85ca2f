"""Deletion benchmark: an integration of about 1.2 million rows deleted as the deletion job deletes it.

    .venv/bin/python bench/delete_bench.py [--scale 1.0] [--database-url postgres://postgres@127.0.0.1:5432/gov_bench_delete]

Builds, in a database of its own, an integration of 20,000 resources, 60,000 roles (20,000 implications,
tagged), 100,000 accounts and 1,020,000 permissions (1.2M rows at scale 1; written with set-based
INSERT … SELECT, the way a first sync's COPY lands them), maintainers and 1,000 access requests with
their decisions, next to a second integration of 100,000 permissions that must survive untouched.
Then it starts the deletion job (``integration_delete_start``: what the screen and the API do) and
runs it (``integration_delete_run``: what the worker does), and prints how long starting took, how
long the job took, rows per second, the number of batches, peak RSS, and the audit events written.

Targets (2-core machine): starting answers in < 1 s; the job deletes 1.2M rows in ≤ 120 s with peak RSS
≤ 200 MiB; one audit event for the whole deletion; the other integration keeps every row.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESOURCES, ROLES, ACCOUNTS, PERMISSIONS, REQUESTS = 20_000, 60_000, 100_000, 1_020_000, 1_000


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build(integration_id: int, scale: float, *, permissions: int | None = None) -> dict[str, int]:
    """The inventory of one integration, written set-based; returns the row counts."""
    from django.db import connection

    n = {
        "resources": max(1, int(RESOURCES * scale)),
        "roles": max(3, int(ROLES * scale)),
        "accounts": max(1, int(ACCOUNTS * scale)),
        "permissions": permissions if permissions is not None else max(1, int(PERMISSIONS * scale)),
    }
    i = integration_id
    with connection.cursor() as c:
        c.execute(
            """INSERT INTO integrations_resource (override_allowed_durations, allowed_durations, external_id,
                 attributes, first_seen_at, last_seen_at, integration_id, name, kind, description, requestable,
                 created_at, updated_at)
               SELECT false, '[]', 'r' || g, '{}', now(), now(), %s, 'resource ' || g, 'db', '', true, now(), now()
               FROM generate_series(1, %s) g""",
            [i, n["resources"]],
        )
        c.execute(
            """INSERT INTO integrations_role (override_allowed_durations, allowed_durations, external_id, attributes,
                 first_seen_at, last_seen_at, integration_id, resource_id, name, description, requestable,
                 created_at, updated_at)
               SELECT false, '[]', r.external_id || '-' || k, '{}', now(), now(), %s, r.id, 'role ' || k, '', true,
                      now(), now()
               FROM integrations_resource r, generate_series(1, %s) k WHERE r.integration_id = %s""",
            [i, max(1, n["roles"] // n["resources"]), i],
        )
        c.execute(
            """INSERT INTO integrations_roleimplication (role_id, implied_role_id)
               SELECT max(id), min(id) FROM integrations_role WHERE integration_id = %s GROUP BY resource_id""",
            [i],
        )
        c.execute(
            """INSERT INTO integrations_role_tags (role_id, tag_id)
               SELECT r.id, t.id FROM integrations_role r, integrations_tag t
               WHERE r.integration_id = %s AND t.name = 'bench' AND r.id %% 10 = 0""",
            [i],
        )
        c.execute(
            """INSERT INTO integrations_account (external_id, attributes, first_seen_at, last_seen_at,
                 integration_id, identity, email, enabled, created_at, updated_at)
               SELECT 'a' || g, '{}', now(), now(), %s, 'user' || g, '', true, now(), now()
               FROM generate_series(1, %s) g""",
            [i, n["accounts"]],
        )
        # Each account holds roles spread over the integration: permission k of account a is role (a*7+k) mod R.
        c.execute(
            """WITH r AS (SELECT array_agg(id ORDER BY id) AS ids FROM integrations_role WHERE integration_id = %s),
                    a AS (SELECT array_agg(id ORDER BY id) AS ids FROM integrations_account WHERE integration_id = %s)
               INSERT INTO integrations_permission (integration_id, account_id, role_id, source, granted_at,
                 last_seen_at)
               SELECT %s, a.ids[1 + g %% cardinality(a.ids)],
                      r.ids[1 + ((g / cardinality(a.ids)) * 7919 + g %% cardinality(a.ids)) %% cardinality(r.ids)],
                      'external', now(), now()
               FROM generate_series(0, %s - 1) g, a, r""",
            [i, i, i, n["permissions"]],
        )
        c.execute("ANALYZE")
    return n


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/gov_bench_delete")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("VAR_DIR", "/tmp/gov-bench-var")
    os.environ.pop("CELERY_BROKER_URL", None)
    import _portal

    _portal.setup("gov_bench_delete")
    _portal.reset_inventory()
    from django.db import connection

    from access.models import AccessDecision, AccessRequest
    from governance.models import AuditEvent, User
    from integrations import cascade, services
    from integrations.models import Integration, Maintainer, Permission, Role, Tag
    from integrations.services import deletion

    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_staff": True})
    Tag.objects.get_or_create(name="bench")
    doomed = Integration.objects.create(application="demo", name="Doomed")
    kept = Integration.objects.create(application="demo", name="Kept")
    t0 = time.monotonic()
    counts = build(doomed.pk, args.scale)
    build(kept.pk, args.scale / 10, permissions=max(1, int(100_000 * args.scale)))
    Maintainer.objects.create(integration=doomed, user=admin)
    roles = list(Role.objects.filter(integration=doomed).values_list("pk", flat=True)[:REQUESTS])
    requests = AccessRequest.objects.bulk_create(
        AccessRequest(requester=admin, beneficiary=admin, integration=doomed, role_id=r, duration="1h",
                      justification="bench", status="denied")
        for r in roles
    )  # fmt: skip
    AccessDecision.objects.bulk_create(
        AccessDecision(request=r, step=0, approver=admin, approved=False) for r in requests
    )
    with connection.cursor() as c:
        c.execute("CHECKPOINT")
    total_rows = sum(counts.values()) + 2 * len(requests)
    kept_permissions = Permission.objects.filter(integration=kept).count()
    print(
        f"built {total_rows:,} rows (and implications, tags) of the integration in {time.monotonic() - t0:.1f} s "
        f"(+ {kept_permissions:,} permissions of another integration)"
    )

    events_before = AuditEvent.objects.count()
    started = time.monotonic()
    # What the screen and the API do, with a broker: create the job (the worker runs it).
    from governance.jobs import job_start

    job = job_start(actor=admin, kind=deletion.JOB_KIND, integration_id=doomed.pk, subject=doomed)
    start_s = time.monotonic() - started
    batches = 0
    real_run_step = cascade._run_step

    def counting(step, integration_id, on_batch, **kw):
        def each(n):
            nonlocal batches
            batches += 1
            on_batch(n)

        return real_run_step(step, integration_id, each, **kw)

    cascade._run_step = counting
    started = time.monotonic()
    job = deletion.integration_delete_run(job_id=job.pk)
    took = time.monotonic() - started
    cascade._run_step = real_run_step
    deleted = sum(job.counts.values())
    events = AuditEvent.objects.count() - events_before
    survived = Permission.objects.filter(integration=kept).count()
    rss = peak_rss_mib()
    print(f"job: {job.status} {job.error}")
    print(f"starting the deletion: {start_s * 1000:.0f} ms (target < 1000 ms)")
    print(
        f"deletion job: {deleted:,} rows in {took:.1f} s = {deleted / took:,.0f} rows/s, {batches} batches "
        f"of ≤ {cascade.BATCH_SIZE:,} (target ≤ 120 s for 1.2M rows)"
    )
    print(f"peak RSS: {rss:.0f} MiB (target ≤ 200 MiB)")
    print(f"audit events written by the job: {events} (target: 1, plus the job's own) ")
    print(f"other integration's permissions kept: {survived:,} of {kept_permissions:,}")
    for label, n in sorted(job.counts.items(), key=lambda kv: -kv[1]):
        print(f"  {label:50} {n:>10,}")
    ok = (
        job.status == "succeeded"
        and start_s < 1
        and (took <= 120 or args.scale < 1)
        and rss <= 200
        and survived == kept_permissions
        and not Integration.objects.filter(pk=doomed.pk).exists()
    )
    services.integration_delete(actor=admin, integration=kept)
    print("OK" if ok else "TARGET MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
