"""A bulk action over 100,000 roles: one set-based statement per change and batch, one audit event per role.

Run: ``.venv/bin/python bench/bulk_bench.py [--roles 100000]``. Loads the roles set-based into PostgreSQL
(``DATABASE_URL``, default database ``gov_bench_bulk``), then times ``bulk_apply`` setting the approval
workflow and the requestable flag of every role. Target: 100,000 roles changed in < 10 s.
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

    from governance.models import AuditEvent
    from integrations.models import ApprovalWorkflow, Integration, Resource, Role
    from integrations.services.bulk import bulk_apply

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
        f"roles changed: {changed:,} in {elapsed:.2f} s ({changed / elapsed:,.0f}/s), audit events: {events:,}"
    )
    print(f"target: {len(ids):,} roles in < {TARGET_S:.0f} s -> {'PASS' if elapsed < TARGET_S else 'FAIL'}")
    return 0 if elapsed < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
