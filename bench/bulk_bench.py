"""A bulk action over 100,000 roles: one set-based statement per change and batch, one audit event per role.

Run: ``.venv/bin/python bench/bulk_bench.py [--roles 100000]``. Loads the roles set-based into PostgreSQL
(``DATABASE_URL``, default database ``gov_bench_bulk``), then times ``bulk_apply`` setting the approval
workflow and the requestable flag of every role, and then the Bulk Actions screen's way for a large
selection: every role matching a filter, applied back by a background job with progress (in-process
without a broker). Target: 100,000 roles changed in < 10 s, each way.
"""

from __future__ import annotations

import argparse
import time

from _portal import reset_inventory, setup

TARGET_S = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--roles", type=int, default=100_000)
    args = parser.parse_args()
    setup("gov_bench_bulk")
    from django.contrib.auth import get_user_model
    from django.db import connection

    from governance.models import AuditEvent, Job
    from integrations.models import ApprovalWorkflow, Integration, Resource, Role
    from integrations.screens.bulk import selection
    from integrations.services.bulk import bulk_apply, bulk_start

    reset_inventory()
    integration = Integration.objects.create(application="demo", name="Bulk bench")
    resource = Resource.objects.create(integration=integration, external_id="r", name="r")
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO integrations_role (integration_id, resource_id, external_id, name, description, requestable,
                 attributes, first_seen_at, last_seen_at, created_at, updated_at, override_allowed_durations, allowed_durations)
               SELECT %s, %s, 'role-' || g, 'role-' || g, '', true, '{}', now(), now(), now(), now(), false, '[]'
               FROM generate_series(1, %s) g""",
            [integration.pk, resource.pk, args.roles],
        )
        cur.execute("ANALYZE integrations_role")
    workflow, _ = ApprovalWorkflow.objects.get_or_create(name="Bulk bench workflow")
    admin, _ = get_user_model().objects.get_or_create(username="bench-admin", defaults={"is_staff": True})
    ids = list(Role.objects.filter(integration=integration).values_list("pk", flat=True))
    events_before = AuditEvent.objects.count()
    start = time.perf_counter()
    changed = bulk_apply(
        actor=admin, target="roles", ids=ids, changes={"workflow": workflow.pk, "requestable": False}
    )
    elapsed = time.perf_counter() - start
    events = AuditEvent.objects.count() - events_before
    assert changed == len(ids) == Role.objects.filter(workflow=workflow, requestable=False).count()
    print(
        f"bulk_apply: {changed:,} roles changed in {elapsed:.2f} s ({changed / elapsed:,.0f}/s), "
        f"audit events: {events:,}"
    )
    ok = elapsed < TARGET_S

    # The screen's way: "all matching" a filter, then a background job with progress.
    events_before = AuditEvent.objects.count()
    start = time.perf_counter()
    selected = selection(admin, "roles", f"integration={integration.pk}&q=role-", "all", [])
    job = bulk_start(
        actor=admin, target="roles", ids=selected, changes={"workflow": None, "requestable": True}
    )
    job.refresh_from_db()
    elapsed_job = time.perf_counter() - start
    events = AuditEvent.objects.count() - events_before
    assert job.status == Job.Status.SUCCEEDED, (job.status, job.error)
    assert job.done == job.total == len(ids), (job.done, job.total)
    assert Role.objects.filter(workflow=None, requestable=True).count() == len(ids), "not all changed"
    assert events >= len(ids), events
    print(
        f"all matching + job: {len(selected):,} roles changed in {elapsed_job:.2f} s "
        f"({len(selected) / elapsed_job:,.0f}/s), audit events: {events:,}, progress {job.done:,}/{job.total:,}"
    )
    ok &= elapsed_job < TARGET_S
    print(f"target: {len(ids):,} roles in < {TARGET_S:.0f} s each way -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
