"""Server time of the integrations, resources, roles and accounts lists with a large inventory, and their
query counts.

Run: ``.venv/bin/python bench/screens_bench.py [--resources 100000] [--permissions 1000000] [--accounts 1000000]``.
Loads the inventory set-based (INSERT … SELECT generate_series) into PostgreSQL (``DATABASE_URL``,
default database ``gov_bench_screens``), then times each page with Django's test client as a signed-in
admin, at two page sizes: each list plain, searched (``q``), sorted by name both ways and the page a third of
the way in. Two accounts in three are linked to a person (by correlation), one in a hundred is a service
account, the others are uncorrelated: the integrations list counts those of its page, and the accounts list
is shown plain, narrowed to them, and to one integration's.
Target: every page < 300 ms server time, the same query count at both sizes.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _portal import reset_inventory, setup

TARGET_MS = 300
INTEGRATIONS = 5
ROLES_PER_RESOURCE = 3


PEOPLE = 1_000  # portal users the linked accounts belong to


def load(resources: int, permissions: int, accounts: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    roles = resources * ROLES_PER_RESOURCE
    reset_inventory()
    User = get_user_model()
    User.objects.filter(username__startswith="bench-person-").delete()
    people = [
        u.pk
        for u in User.objects.bulk_create(
            User(username=f"bench-person-{n}", email=f"person{n}@example.com") for n in range(PEOPLE)
        )
    ]
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO integrations_integration (application, name, connection_config, connection_secrets,
                 read_only, allow_changing_account_permissions, allow_creating_accounts, requestable,
                 requestable_by_default, auto_assign_recommended_owners, auto_assign_recommended_maintainers,
                 notify_external_permission_changes, connector_attributes, notification_webhook_url, sync_state,
                 resources_sync_interval, permissions_sync_interval, last_sync_status, last_sync_error,
                 created_at, updated_at, override_allowed_durations, allowed_durations)
               SELECT 'demo', 'Bench ' || g, '{}', '', false, true, true, true, true, false, false, false, '{}', '',
                 '{}', interval '1 hour', interval '1 day', 'succeeded', '', now(), now(), false, '[]'
               FROM generate_series(1, %s) g""",
            [INTEGRATIONS],
        )
        cur.execute("SELECT min(id) FROM integrations_integration")
        first = cur.fetchone()[0]
        cur.execute(
            """INSERT INTO integrations_resource (integration_id, external_id, name, kind, description, requestable,
                 attributes, first_seen_at, last_seen_at, created_at, updated_at, override_allowed_durations, allowed_durations)
               SELECT %s + (g %% %s), 'r' || g, 'resource-' || lpad(g::text, 7, '0'), 'group', '', true,
                 '{}', now(), now(), now(), now(), false, '[]'
               FROM generate_series(1, %s) g""",
            [first, INTEGRATIONS, resources],
        )
        cur.execute(
            """INSERT INTO integrations_role (integration_id, resource_id, external_id, name, description, requestable,
                 attributes, first_seen_at, last_seen_at, created_at, updated_at, override_allowed_durations, allowed_durations)
               SELECT r.integration_id, r.id, r.external_id || '-' || n, (ARRAY['admin','member','viewer'])[n], '', true,
                 '{}', now(), now(), now(), now(), false, '[]'
               FROM integrations_resource r CROSS JOIN generate_series(1, %s) n""",
            [ROLES_PER_RESOURCE],
        )
        cur.execute(
            """INSERT INTO integrations_account (integration_id, external_id, identity, email, enabled, attributes,
                 user_id, link_source, service_account, first_seen_at, last_seen_at, created_at, updated_at)
               SELECT %s + (g %% %s), 'a' || g, 'user' || lpad(g::text, 7, '0'), '', true, '{}',
                 CASE WHEN g %% 3 <> 0 THEN (%s::bigint[])[1 + g %% %s] END,
                 CASE WHEN g %% 3 <> 0 THEN 'correlation' ELSE '' END, g %% 3 = 0 AND g %% 100 = 0,
                 now(), now(), now(), now()
               FROM generate_series(1, %s) g""",
            [first, INTEGRATIONS, people, PEOPLE, accounts],
        )
        # Each permission: an account and a role of the same integration.
        cur.execute(
            """CREATE TEMP TABLE bench_roles AS
               SELECT id, integration_id, row_number() OVER (PARTITION BY integration_id ORDER BY id) AS n
               FROM integrations_role;
               CREATE TEMP TABLE bench_accounts AS
               SELECT id, integration_id, row_number() OVER (PARTITION BY integration_id ORDER BY id) AS n,
                      count(*) OVER (PARTITION BY integration_id) AS total
               FROM integrations_account;
               CREATE INDEX ON bench_roles (integration_id, n); CREATE INDEX ON bench_accounts (integration_id, n);"""
        )
        per_integration_accounts = accounts // INTEGRATIONS
        per_role = -(-permissions // roles)  # accounts per role, rounded up
        cur.execute(
            """INSERT INTO integrations_permission (integration_id, account_id, role_id, source, granted_at, last_seen_at)
               SELECT r.integration_id, a.id, r.id, 'external', now(), now()
               FROM bench_roles r
               CROSS JOIN generate_series(1, %s) j
               JOIN bench_accounts a ON a.integration_id = r.integration_id
                                    AND a.n = 1 + ((r.n * 31 + j * 7919) %% %s)
               LIMIT %s
               ON CONFLICT DO NOTHING""",
            [per_role, per_integration_accounts, permissions],
        )
        # As autovacuum leaves a database at rest: statistics, and the visibility map index-only scans read.
        cur.execute("VACUUM ANALYZE")


def time_page(client, url: str, runs: int = 7) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url)  # warm
    times = []
    queries = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(ctx)
    return statistics.median(times), queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--permissions", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the inventory already loaded")
    args = parser.parse_args()
    setup("gov_bench_screens")
    from django.contrib.auth import get_user_model
    from django.test import Client

    from integrations.models import Account, Integration, Permission, Resource, Role
    from integrations.selectors import uncorrelated_accounts

    if not args.reuse:
        start = time.perf_counter()
        load(args.resources, args.permissions, args.accounts)
        print(f"loaded in {time.perf_counter() - start:.1f} s")
    print(
        f"inventory: {Resource.objects.count():,} resources, {Role.objects.count():,} roles, "
        f"{Permission.objects.count():,} permissions, {Account.objects.count():,} accounts "
        f"({uncorrelated_accounts().count():,} uncorrelated)"
    )
    first = Integration.objects.order_by("pk").values_list("pk", flat=True).first()
    admin, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    ok = True
    print(f"{'page':<40} {'size':>5} {'median ms':>10} {'queries':>8}  target < {TARGET_MS} ms, same queries")
    for url in [
        "/integrations/",
        "/integrations/?q=bench",
        "/integrations/?sort=-name",
        "/resources/",
        "/resources/?q=resource-00123",
        "/resources/?sort=name",
        "/resources/?sort=-name",
        "/resources/?page={third}",
        "/roles/",
        "/roles/?q=resource-00123",
        "/roles/?sort=name",
        "/roles/?sort=-name",
        "/roles/?sort=resource",
        "/roles/?page={third}",
        "/accounts/",
        "/accounts/?correlated=false&removed=false",
        "/accounts/?integration={first}&correlated=false&removed=false",
        "/accounts/?sort=-identity",
        "/accounts/?page={third}",
    ]:
        counts = []
        for size in (25, 100):
            sep = "&" if "?" in url else "?"
            # {third}: the page a third of the way into the list, at this page size.
            lists = {"/resources/": Resource, "/accounts/": Account}
            rows = lists.get(url.split("?")[0], Role).objects.count()
            page_url = url.format(third=1 + rows // 3 // size, first=first)
            ms, queries = time_page(client, f"{page_url}{sep}per_page={size}")
            counts.append(queries)
            ok &= ms < TARGET_MS
            print(f"{page_url:<40} {size:>5} {ms:>10.1f} {queries:>8}")
        ok &= counts[0] == counts[1]
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
