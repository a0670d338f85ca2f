"""The PostgreSQL writer: :class:`_PgIngest` COPies rows in and merges them set-based.

Owns the formatting of new rows as COPY text (in the reading thread, with ids drawn from the
sequences), the straight COPY of an integration's first sync, the temporary tables and
``INSERT … ON CONFLICT`` merges of later syncs, the permission differences, the removals of a
full run and the ANALYZE after large changes.
"""

from __future__ import annotations

import itertools
import json
import re

from django.db import DEFAULT_DB_ALIAS, connection, connections
from psycopg import errors as psycopg_errors

from ..models import Account
from .events import EXTERNAL_EVENTS_LIMIT
from .ingest import DuplicateObject, _AccountRows, _Copy, _EntitlementRows, _Ingest

_SYNC_MANAGED = ", ".join(f"'{v}'" for v in Account.SYNC_MANAGED)  # as SQL literals


def _copy_text(value: str) -> str:
    """A value as a field of COPY's text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _PgIngest(_Ingest):
    """PostgreSQL: COPY each batch into a temporary table and merge it with one statement per table.

    Permissions of accounts this run creates are COPied straight into the permission table (a new
    account holds nothing yet); those of existing accounts are compared with what they hold, read
    with one indexed query per batch. Role ids come from a bounded cache filled by the role upserts
    and, for roles unchanged since the last run, by one lookup per batch.

    Rows that are new to an empty integration (its first sync) are formatted as COPY text by the
    reading thread, ids included, so this thread only streams them: the database never waits
    for Python between two statements, and the two threads' work overlaps.
    """

    TEMP_TABLES = (
        "sync_seen_resources",
        "sync_seen_roles",
        "sync_seen_accounts",
        "sync_b_resources",
        "sync_b_roles",
        "sync_b_accounts",
        "sync_implies",
    )
    ROLE_CACHE_LIMIT = 200_000  # external id -> id entries kept; beyond, the cache starts again
    ENCODE_ATTRIBUTES = True  # COPY takes JSON text; encoding it in the reading thread overlaps the writes

    def begin(self) -> None:
        self.role_ids: dict[str, int] = {}
        self.analyzed_at_counts: dict[str, int] = {}
        with connection.cursor() as c:
            c.execute(
                "SELECT EXISTS (SELECT 1 FROM integrations_account WHERE integration_id = %s)",
                [self.integration.pk],
            )
            self.fresh_accounts = not c.fetchone()[0]
            c.execute(
                "SELECT NOT EXISTS (SELECT 1 FROM integrations_resource WHERE integration_id = %s)"
                " AND NOT EXISTS (SELECT 1 FROM integrations_role WHERE integration_id = %s)",
                [self.integration.pk, self.integration.pk],
            )
            self.fresh_inventory = c.fetchone()[0]
            self.resource_ids: dict[str, int] = {}  # of a fresh inventory: external id -> id
            self.roles_known = self.fresh_inventory  # role_ids holds every role (all are this run's)
            self.role_lines: dict[str, str] | None = None
            self.timestamp = self.now.isoformat()
            self.durations = _copy_text(json.dumps(_all_durations()))
            # Dropped at commit; also dropped here in case an enclosing transaction kept them.
            c.execute(f"DROP TABLE IF EXISTS {', '.join(self.TEMP_TABLES)}")
            c.execute(
                """
                CREATE TEMP TABLE sync_seen_resources (external_id text PRIMARY KEY) ON COMMIT DROP;
                CREATE TEMP TABLE sync_seen_roles (external_id text PRIMARY KEY) ON COMMIT DROP;
                CREATE TEMP TABLE sync_seen_accounts (external_id text PRIMARY KEY) ON COMMIT DROP;
                CREATE TEMP TABLE sync_b_resources (external_id text, name text, kind text) ON COMMIT DROP;
                CREATE TEMP TABLE sync_b_roles (external_id text, resource text, name text, attributes jsonb)
                    ON COMMIT DROP;
                CREATE TEMP TABLE sync_b_accounts (external_id text, identity text, email text, attributes jsonb,
                    enabled boolean, user_id bigint) ON COMMIT DROP;
                CREATE TEMP TABLE sync_implies (role text, implied text) ON COMMIT DROP;
                """
            )
        if self.fresh_accounts:  # read in the sync's transaction: the reading thread formats the accounts
            self._users_by_email()

    @staticmethod
    def _copy(cursor, table: str, columns: tuple[str, ...], rows, truncate: bool = True) -> None:
        if truncate:
            cursor.execute(f"TRUNCATE {table}")
        with cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _seen(self, cursor, kind: str, batch_table: str, what: str) -> None:
        """Record this batch's keys as seen; a key sent twice in this run is an error naming it."""
        cursor.execute(
            f"SELECT b.external_id FROM {batch_table} b JOIN sync_seen_{kind} s ON s.external_id = b.external_id LIMIT 1"
        )
        row = cursor.fetchone()
        if row is None:
            cursor.execute(
                f"SELECT external_id FROM {batch_table} GROUP BY external_id HAVING count(*) > 1 LIMIT 1"
            )
            row = cursor.fetchone()
        if row is not None:
            raise DuplicateObject(f"the connector sent the {what} {row[0]!r} twice in one run")
        cursor.execute(f"INSERT INTO sync_seen_{kind} SELECT external_id FROM {batch_table}")

    def _cache_roles(self, pairs) -> None:
        if len(self.role_ids) > self.ROLE_CACHE_LIMIT:
            self.role_ids = {}
        self.role_ids.update(pairs)

    def _role_ids_of(self, cursor, held: list[list[str]]) -> dict[str, int]:
        """A mapping from role identity to id holding every role named in ``held`` that exists."""
        ids = self.role_ids
        missing = {r for roles in held for r in roles if r not in ids}
        if not missing:
            return ids
        cursor.execute(
            "SELECT external_id, id FROM integrations_role WHERE integration_id = %s AND external_id = ANY(%s)",
            [self.integration.pk, list(missing)],
        )
        found = cursor.fetchall()
        if len(ids) + len(found) > self.ROLE_CACHE_LIMIT:  # start again from this batch's roles
            ids = {r: ids[r] for roles in held for r in roles if r in ids}
            self.role_ids = ids
        ids.update(found)
        return ids

    # -- formatting new rows (runs in the reading thread) ---------------------------------------
    RESOURCE_COLUMNS = (
        "id, integration_id, external_id, name, kind, description, requestable, override_allowed_durations,"
        " allowed_durations, attributes, first_seen_at, last_seen_at, created_at, updated_at"
    )
    ROLE_COLUMNS = (
        "id, integration_id, resource_id, external_id, name, description, requestable, override_allowed_durations,"
        " allowed_durations, attributes, first_seen_at, last_seen_at, created_at, updated_at"
    )
    ACCOUNT_COLUMNS = (
        "id, integration_id, external_id, identity, email, attributes, enabled, user_id, link_source,"
        " first_seen_at, last_seen_at, created_at, updated_at"
    )
    PERMISSION_COLUMNS = "integration_id, account_id, role_id, source, granted_at, last_seen_at"

    @staticmethod
    def draw_ids(table: str, n: int) -> list[int]:
        """``n`` ids from the table's sequence, through the reading thread's own connection: sequences
        are not transactional, so the ids need not come from the sync's transaction."""
        with connections[DEFAULT_DB_ALIAS].cursor() as c:
            c.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", [n]
            )
            return [pk for (pk,) in c.fetchall()]

    def map_entitlements(self, batch: list[dict]) -> _EntitlementRows:
        rows = super().map_entitlements(batch)
        if self.fresh_inventory:
            rows.copies = self._format_entitlements(rows)
        return rows

    def _format_entitlements(self, rows: _EntitlementRows) -> list[_Copy]:
        iid, at, durations, copies = self.integration.pk, self.timestamp, self.durations, []
        new = [r for external_id, r in rows.resources.items() if external_id not in self.resource_ids]
        if new:
            ids = self.draw_ids("integrations_resource", len(new))
            requestable = "t" if self.integration.requestable_by_default else "f"
            data = "".join(
                f"{pk}\t{iid}\t{_copy_text(r['external_id'])}\t{_copy_text(r['name'])}\t{_copy_text(r['kind'])}"
                f"\t\t{requestable}\tf\t{durations}\t{{}}\t{at}\t{at}\t{at}\t{at}\n"
                for pk, r in zip(ids, new, strict=True)
            )
            self.resource_ids.update(zip((r["external_id"] for r in new), ids, strict=True))
            copies.append(
                _Copy("integrations_resource", self.RESOURCE_COLUMNS, data.encode(), "resource", "resources_created",
                      len(ids), ids)
            )  # fmt: skip
        if rows.roles:
            ids = self.draw_ids("integrations_role", len(rows.roles))
            resource_ids = self.resource_ids
            data = "".join(
                f"{pk}\t{iid}\t{resource_ids[r['resource']]}\t{_copy_text(r['external_id'])}\t{_copy_text(r['name'])}"
                f"\t\tt\tf\t{durations}\t{_copy_text(r['attributes_json'])}\t{at}\t{at}\t{at}\t{at}\n"
                for pk, r in zip(ids, rows.roles, strict=True)
            )
            copies.append(
                _Copy("integrations_role", self.ROLE_COLUMNS, data.encode(), "entitlement", "roles_created",
                      len(ids), ids)
            )  # fmt: skip
            if self.roles_known:
                self.role_ids.update(zip((r["external_id"] for r in rows.roles), ids, strict=True))
                if len(self.role_ids) > self.ROLE_CACHE_LIMIT:  # too many to keep: looked up per batch
                    self.roles_known, self.role_ids = False, {}
        if rows.implications and self.roles_known:
            copies += self._format_implications(rows)
        return copies

    def _format_implications(self, rows: _EntitlementRows) -> list[_Copy]:
        """Implications between roles whose ids are known (this batch's or earlier ones); the others,
        on roles listed later, are left in ``rows`` to be linked at the end of the listing."""
        role_ids, pairs, later = self.role_ids, [], []
        for identity, implied in rows.implications:
            pk = role_ids[identity]
            unknown = []
            for other in set(implied):
                if other not in role_ids:
                    unknown.append(other)
                elif role_ids[other] != pk:
                    pairs.append(f"{pk}\t{role_ids[other]}\n")
            if unknown:
                later.append((identity, unknown))
        rows.implications = later
        if not pairs:
            return []
        ids = self.draw_ids("integrations_roleimplication", len(pairs))
        data = "".join(f"{pk}\t{pair}" for pk, pair in zip(ids, pairs, strict=True))
        return [
            _Copy("integrations_roleimplication", "id, role_id, implied_role_id", data.encode(), "implication",
                  None, len(ids))
        ]  # fmt: skip

    def map_accounts(self, batch: list[dict]) -> _AccountRows:
        rows = super().map_accounts(batch)
        if self.fresh_accounts and rows.accounts:
            self._format_accounts(rows)
        return rows

    def _format_accounts(self, rows: _AccountRows) -> None:
        """The new accounts, and when every role id is known (a first sync), the permissions they hold."""
        iid, at, NULL = self.integration.pk, self.timestamp, "\\N"
        users = self._users_by_email()
        ids = self.draw_ids("integrations_account", len(rows.accounts))
        unlinked, linked = f"{NULL}\t", f"\t{Account.LinkSource.CORRELATION}"

        def link(email: str) -> str:  # the user id and how it was linked, as two COPY fields
            user = users.get(email.lower())
            return unlinked if user is None else f"{user}{linked}"

        data = "".join(
            f"{pk}\t{iid}\t{_copy_text(a['external_id'])}\t{_copy_text(a['identity'])}\t{_copy_text(a['email'])}"
            f"\t{_copy_text(a['attributes_json'])}\t{'t' if a['enabled'] else 'f'}"
            f"\t{link(a['email'])}\t{at}\t{at}\t{at}\t{at}\n"
            for pk, a in zip(ids, rows.accounts, strict=True)
        )
        rows.copies.append(
            _Copy("integrations_account", self.ACCOUNT_COLUMNS, data.encode(), "account", "accounts_created", len(ids))
        )  # fmt: skip
        rows.created = dict(zip((a["external_id"] for a in rows.accounts), ids, strict=True))
        if not (self.roles_known and self.first_sync):  # else their ids are looked up, and grants recorded
            return
        if self.role_lines is None:  # each role's part of a permission line, formatted once per run
            rest = f"\texternal\t{at}\t{at}\n"
            self.role_lines = {r: f"{pk}{rest}" for r, pk in self.role_ids.items()}
            self.role_ids = {}  # the permissions of this first sync are formatted from role_lines
        role_lines, created, parts, n = self.role_lines, rows.created, [], 0
        for e, held in rows.held.items():
            mine = [role_lines[r] for r in set(held) if r in role_lines]
            if mine:
                prefix = f"{iid}\t{created[e]}\t"
                parts.append(prefix + prefix.join(mine))
                n += len(mine)
        rows.copies.append(
            _Copy("integrations_permission", self.PERMISSION_COLUMNS, "".join(parts).encode(), "permission",
                  "permissions_created", n)
        )  # fmt: skip
        rows.held = {}

    # -- writing ----------------------------------------------------------------------------------
    def _write_copies(self, c, copies: list[_Copy]) -> None:
        """Stream rows the reading thread formatted; a key sent twice trips the table's unique key."""
        for copy in copies:
            try:
                with c.cursor.copy(f"COPY {copy.table} ({copy.columns}) FROM STDIN") as stream:
                    stream.write(copy.data)
            except psycopg_errors.UniqueViolation as exc:
                key = re.search(r"=\(\d+, (.*)\) already exists", exc.diag.message_detail or "")
                raise DuplicateObject(
                    f"the connector sent the {copy.what} {key.group(1) if key else '?'!r} twice in one run"
                ) from None
            if copy.counter:
                self.result.add(copy.counter, copy.rows)
            if copy.table == "integrations_resource":
                self.result.new_resource_ids += copy.ids
            elif copy.table == "integrations_role":
                self.result.new_role_ids += copy.ids

    def entitlements(self, rows: _EntitlementRows) -> None:
        self._remember(rows)
        with connection.cursor() as c:
            if self.fresh_inventory:
                self._write_copies(c, rows.copies)
            else:
                self._upsert_entitlements(c, rows)
            if rows.implications:  # kept in the database, not in memory, until the end of the listing
                self._copy(
                    c,
                    "sync_implies",
                    ("role", "implied"),
                    ((role, i) for role, implied in rows.implications for i in implied),
                    truncate=False,
                )
        if rows.deleted:
            self.remove_roles(rows.deleted)

    def _upsert_entitlements(self, c, rows: _EntitlementRows) -> None:
        iid, now = self.integration.pk, self.now
        if rows.resources:
            self._copy(
                c,
                "sync_b_resources",
                ("external_id", "name", "kind"),
                ((r["external_id"], r["name"], r["kind"]) for r in rows.resources.values()),
            )
            c.execute(
                "INSERT INTO sync_seen_resources SELECT external_id FROM sync_b_resources ON CONFLICT DO NOTHING"
            )
            c.execute(
                """
                INSERT INTO integrations_resource AS t (integration_id, external_id, name, kind, description,
                    requestable, override_allowed_durations, allowed_durations, attributes,
                    first_seen_at, last_seen_at, removed_at, created_at, updated_at)
                SELECT %s, b.external_id, b.name, b.kind, '', %s, false, %s::jsonb, '{}'::jsonb, %s, %s, NULL, %s, %s
                FROM sync_b_resources b
                ON CONFLICT (integration_id, external_id) DO UPDATE
                SET name = EXCLUDED.name, kind = EXCLUDED.kind, removed_at = NULL,
                    last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at
                WHERE (t.name, t.kind, t.removed_at IS NULL) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind, true)
                RETURNING id, (xmax = 0)
                """,
                [
                    iid,
                    self.integration.requestable_by_default,
                    json.dumps(_all_durations()),
                    now,
                    now,
                    now,
                    now,
                ],
            )
            new = [pk for pk, inserted in c.fetchall() if inserted]
            self.result.add("resources_created", len(new))
            self.result.new_resource_ids += new
        if rows.roles:
            self._copy(
                c,
                "sync_b_roles",
                ("external_id", "resource", "name", "attributes"),
                ((r["external_id"], r["resource"], r["name"], r["attributes_json"]) for r in rows.roles),
            )
            self._seen(c, "roles", "sync_b_roles", "entitlement")
            c.execute(
                """
                INSERT INTO integrations_role AS t (integration_id, resource_id, external_id, name, description,
                    requestable, override_allowed_durations, allowed_durations, attributes,
                    first_seen_at, last_seen_at, removed_at, created_at, updated_at)
                SELECT %s, r.id, b.external_id, b.name, '', true, false, %s::jsonb, b.attributes, %s, %s, NULL, %s, %s
                FROM sync_b_roles b
                JOIN integrations_resource r ON r.integration_id = %s AND r.external_id = b.resource
                ON CONFLICT (integration_id, external_id) DO UPDATE
                SET resource_id = EXCLUDED.resource_id, name = EXCLUDED.name, attributes = EXCLUDED.attributes,
                    removed_at = NULL, last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at
                WHERE (t.resource_id, t.name, t.attributes, t.removed_at IS NULL)
                    IS DISTINCT FROM (EXCLUDED.resource_id, EXCLUDED.name, EXCLUDED.attributes, true)
                RETURNING id, external_id, (xmax = 0)
                """,
                [iid, json.dumps(_all_durations()), now, now, now, now, iid],
            )
            returned = c.fetchall()
            self._cache_roles((external_id, pk) for pk, external_id, _ in returned)
            new = [pk for pk, _, inserted in returned if inserted]
            self.result.add("roles_created", len(new))
            self.result.new_role_ids += new

    def link_implications(self) -> None:
        """Make the implied roles of the listed roles exactly what the application says (set-based)."""
        with connection.cursor() as c:
            c.execute("SELECT EXISTS (SELECT 1 FROM sync_implies)")
            if not c.fetchone()[0]:
                return
            params = {"iid": self.integration.pk}
            if self.fresh_inventory:  # nothing to compare with: one insert
                c.execute(
                    """
                    INSERT INTO integrations_roleimplication (role_id, implied_role_id)
                        SELECT DISTINCT r.id, i.id
                        FROM sync_implies b
                        JOIN integrations_role r ON r.integration_id = %(iid)s AND r.external_id = b.role
                        JOIN integrations_role i ON i.integration_id = %(iid)s AND i.external_id = b.implied
                        WHERE r.id <> i.id
                    """,
                    params,
                )
                return
            c.execute(
                """
                ANALYZE sync_implies;
                CREATE TEMP TABLE sync_implied ON COMMIT DROP AS
                    SELECT DISTINCT r.id AS role_id, i.id AS implied_role_id
                    FROM sync_implies b
                    JOIN integrations_role r ON r.integration_id = %(iid)s AND r.external_id = b.role
                    JOIN integrations_role i ON i.integration_id = %(iid)s AND i.external_id = b.implied
                    WHERE r.id <> i.id;
                DELETE FROM integrations_roleimplication t
                USING (SELECT DISTINCT r.id FROM sync_implies b
                       JOIN integrations_role r ON r.integration_id = %(iid)s AND r.external_id = b.role) listed
                WHERE t.role_id = listed.id
                  AND NOT EXISTS (SELECT 1 FROM sync_implied w
                                  WHERE w.role_id = t.role_id AND w.implied_role_id = t.implied_role_id);
                INSERT INTO integrations_roleimplication (role_id, implied_role_id)
                    SELECT w.role_id, w.implied_role_id FROM sync_implied w
                    WHERE NOT EXISTS (SELECT 1 FROM integrations_roleimplication t
                                      WHERE t.role_id = w.role_id AND t.implied_role_id = w.implied_role_id);
                DROP TABLE sync_implied;
                """,
                params,
            )

    def accounts(self, rows: _AccountRows) -> None:
        with connection.cursor() as c:
            if rows.accounts:
                if self.fresh_accounts:
                    self._write_copies(c, rows.copies)
                    account_ids = inserted = rows.created
                else:
                    users = self._users_by_email()
                    account_ids, inserted = self._upsert_accounts(c, rows.accounts, users)
                    self.result.add("accounts_created", len(inserted))
                role_ids = self._role_ids_of(c, list(rows.held.values()))
                new = [(account_ids[e], held) for e, held in rows.held.items() if e in inserted]
                desired = {  # existing accounts: account id -> the role ids they hold now
                    account_ids[e]: {role_ids[r] for r in held if r in role_ids}
                    for e, held in rows.held.items()
                    if e not in inserted
                }
                gained = self._permission_changes(c, desired) if desired else []
                self._grant(c, new, role_ids, gained)
        if rows.deleted:
            self.remove_accounts(rows.deleted)

    # An existing account's link is the sync's to change only when nobody else made it: its link source is
    # none yet or the sync's own correlation, and it is no service account (Account.SYNC_MANAGED). Otherwise
    # the stored user and link source stay. The row is rewritten only when something it shows changes.
    _KEEPS_LINK = f"(t.service_account OR t.link_source NOT IN ({_SYNC_MANAGED}))"
    _USER = f"CASE WHEN {_KEEPS_LINK} THEN t.user_id ELSE EXCLUDED.user_id END"
    _LINK = f"CASE WHEN {_KEEPS_LINK} THEN t.link_source ELSE EXCLUDED.link_source END"
    ACCOUNT_UPSERT = f"""
        INSERT INTO integrations_account AS t (integration_id, external_id, identity, email, attributes,
            enabled, user_id, link_source, first_seen_at, last_seen_at, removed_at, created_at, updated_at)
        SELECT %s, b.external_id, b.identity, b.email, b.attributes, b.enabled, b.user_id,
            CASE WHEN b.user_id IS NULL THEN '{Account.LinkSource.NONE}' ELSE '{Account.LinkSource.CORRELATION}' END,
            %s, %s, NULL, %s, %s
        FROM sync_b_accounts b
        ON CONFLICT (integration_id, external_id) DO UPDATE
        SET identity = EXCLUDED.identity, email = EXCLUDED.email, attributes = EXCLUDED.attributes,
            enabled = EXCLUDED.enabled, user_id = {_USER}, link_source = {_LINK}, removed_at = NULL,
            last_seen_at = EXCLUDED.last_seen_at, updated_at = EXCLUDED.updated_at
        WHERE (t.identity, t.email, t.attributes, t.enabled, t.removed_at IS NULL, t.user_id, t.link_source)
            IS DISTINCT FROM (EXCLUDED.identity, EXCLUDED.email, EXCLUDED.attributes, EXCLUDED.enabled, true,
               {_USER}, {_LINK})
        RETURNING external_id, id, (xmax = 0)
        """

    def _upsert_accounts(
        self, c, accounts: list[dict], users: dict[str, int]
    ) -> tuple[dict[str, int], set[str]]:
        """Merge the batch into the accounts; return every account's id and the external ids it created."""
        iid, now = self.integration.pk, self.now
        self._copy(
            c,
            "sync_b_accounts",
            ("external_id", "identity", "email", "attributes", "enabled", "user_id"),
            (
                (a["external_id"], a["identity"], a["email"], a["attributes_json"], a["enabled"],
                 users.get(a["email"].lower()))
                for a in accounts
            ),
        )  # fmt: skip
        self._seen(c, "accounts", "sync_b_accounts", "account")
        c.execute(self.ACCOUNT_UPSERT, [iid, now, now, now, now])
        returned = c.fetchall()
        inserted = {external_id for external_id, _, new in returned if new}
        if len(returned) == len(accounts):
            return {external_id: pk for external_id, pk, _ in returned}, inserted
        c.execute(  # unchanged accounts are not returned by the upsert
            "SELECT a.external_id, a.id FROM sync_b_accounts b JOIN integrations_account a"
            " ON a.integration_id = %s AND a.external_id = b.external_id",
            [iid],
        )
        return dict(c.fetchall()), inserted

    def _permission_changes(self, c, desired: dict[int, set[int]]) -> list[tuple[int, set[int]]]:
        """End what these existing accounts no longer hold; return the roles each one gained."""
        c.execute(
            "SELECT id, account_id, role_id FROM integrations_permission"
            " WHERE account_id = ANY(%s) AND ended_at IS NULL",
            [list(desired)],
        )
        gone, gained = [], {a: set(roles) for a, roles in desired.items()}
        for pk, account_id, role_id in c.fetchall():
            if role_id in desired[account_id]:
                gained[account_id].discard(role_id)
            else:
                gone.append(pk)
        if gone:
            self._end_where(c, "id", gone)
        return [(a, roles) for a, roles in gained.items() if roles]

    COPY_CHUNK = 4096  # lines per write: PostgreSQL inserts one chunk while the next is formatted

    def _grant(
        self,
        c,
        new: list[tuple[int, list[str]]],
        role_ids: dict[str, int],
        gained: list[tuple[int, set[int]]],
    ) -> None:
        """COPY new external permissions straight into the permission table (ids only: no escaping needed):
        every role ``new`` accounts hold (by identity), and the role ids existing accounts ``gained``."""
        if not (new or gained):
            return
        iid, at = self.integration.pk, self.now.isoformat()
        rest = f"\texternal\t{at}\t{at}\n"
        granted: list[tuple[int, set[int]]] = []
        n = 0
        with c.cursor.copy(
            "COPY integrations_permission (integration_id, account_id, role_id, source, granted_at, last_seen_at)"
            " FROM STDIN"
        ) as copy:
            lines: list[str] = []
            for account_id, held in itertools.chain(
                ((a, {role_ids[r] for r in held if r in role_ids}) for a, held in new), gained
            ):
                lines += [f"{iid}\t{account_id}\t{r}{rest}" for r in held]
                if not self.first_sync:
                    granted.append((account_id, held))
                if len(lines) >= self.COPY_CHUNK:
                    copy.write("".join(lines))
                    n += len(lines)
                    lines = []
            if lines:
                copy.write("".join(lines))
                n += len(lines)
        self.result.add("permissions_created", n)
        if granted:
            self._external(
                granted=itertools.islice(
                    ((a, r) for a, roles in granted for r in roles), EXTERNAL_EVENTS_LIMIT
                ),
                count=n,
            )

    def _end_where(self, c, column: str, ids: list[int]) -> None:
        """End these active permissions, or those of these accounts or roles (``column``: id, account_id
        or role_id), recording them as external revokes."""
        c.execute(
            f"UPDATE integrations_permission SET ended_at = %s WHERE {column} = ANY(%s) AND ended_at IS NULL"
            " RETURNING account_id, role_id",
            [self.now, ids],
        )
        ended = c.fetchall()
        self.result.add("permissions_ended", len(ended))
        self._external(revoked=ended)

    def _remove(self, table: str, counter: str, external_ids: list[str]) -> list[int]:
        """Mark these objects removed (those not removed yet are counted); return the ids of all of them."""
        with connection.cursor() as c:
            c.execute(
                f"""
                WITH hit AS (SELECT id, removed_at FROM integrations_{table}
                             WHERE integration_id = %s AND external_id = ANY(%s)),
                     marked AS (UPDATE integrations_{table} t SET removed_at = %s FROM hit
                                WHERE t.id = hit.id AND hit.removed_at IS NULL RETURNING t.id)
                SELECT hit.id, EXISTS (SELECT 1 FROM marked WHERE marked.id = hit.id) FROM hit
                """,
                [self.integration.pk, external_ids, self.now],
            )
            hits = c.fetchall()
        self.result.add(counter, sum(1 for _, marked in hits if marked))
        return [pk for pk, _ in hits]

    def remove_roles(self, identities: list[str]) -> None:
        ids = self._remove("role", "roles_removed", identities)
        if ids:
            with connection.cursor() as c:
                self._end_where(c, "role_id", ids)

    def remove_accounts(self, external_ids: list[str]) -> None:
        ids = self._remove("account", "accounts_removed", external_ids)
        if ids:
            with connection.cursor() as c:
                self._end_where(c, "account_id", ids)

    STATISTICS = {  # table: (the counts of this run's changes to it, the columns its lookups filter on)
        "resource": (("resources_created", "resources_removed"), "integration_id, external_id, removed_at"),
        "role": (("roles_created", "roles_removed"), "integration_id, external_id, resource_id, removed_at"),
        "account": (("accounts_created", "accounts_removed"), "integration_id, external_id, removed_at"),
        "permission": (
            ("permissions_created", "permissions_ended"),
            "integration_id, account_id, role_id, ended_at",
        ),
    }

    def refresh_statistics(self) -> None:
        """ANALYZE the tables this run changed by more than a tenth since the last look (or never analysed).

        Autovacuum would get there later; until then a bulk load leaves the planner estimating
        from the tables it saw before — an integration it believes empty — and the next phase,
        delta run or list screen picks plans that read the whole integration once per row.
        ANALYZE samples a fixed number of rows (this transaction's own included), so it costs a
        fraction of a second however large the table, and its figures commit with the sync."""
        counts, before = self.result.counts, self.analyzed_at_counts
        changed = {
            t: sum(counts.get(k, 0) - before.get(k, 0) for k in keys)
            for t, (keys, _) in self.STATISTICS.items()
        }
        changed = {t: n for t, n in changed.items() if n}
        self.analyzed_at_counts = dict(counts)
        if not changed:
            return
        with connection.cursor() as c:
            c.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)",
                [[f"integrations_{t}" for t in changed]],
            )
            estimates = dict(c.fetchall())
            for table, n in changed.items():
                estimate = estimates.get(f"integrations_{table}", -1)
                if (
                    estimate < 0 or n > 0.1 * estimate + 1000
                ):  # the lookup columns only: autovacuum does the rest
                    c.execute(f"ANALYZE integrations_{table} ({self.STATISTICS[table][1]})")

    def between_listings(self) -> None:
        if not (self.fresh_accounts and self.roles_known):  # else the account listing looks nothing up
            self.refresh_statistics()

    def mark_unseen_removed(self) -> None:
        iid, now = self.integration.pk, self.now
        with connection.cursor() as c:
            for table, kind in (("resource", "resources"), ("role", "roles"), ("account", "accounts")):
                if self.fresh_accounts if kind == "accounts" else self.fresh_inventory:
                    continue  # every one there is came from this run
                c.execute(
                    f"""
                    UPDATE integrations_{table} t SET removed_at = %s
                    WHERE t.integration_id = %s AND t.removed_at IS NULL
                      AND NOT EXISTS (SELECT 1 FROM sync_seen_{kind} s WHERE s.external_id = t.external_id)
                    """,
                    [now, iid],
                )
                self.result.add(f"{kind}_removed", c.rowcount)
        self._end_of_removed()


def _all_durations() -> list[str]:
    from ..durations import ALL_DURATIONS

    return list(ALL_DURATIONS)
