"""Sync: read an integration's application through its connector into the inventory.

The connector streams objects; they are written in batches with set-based statements keyed
on (integration, external id), never one query per object, so memory stays flat however
large the source. The whole run is one transaction: a run that fails or is cancelled leaves
the inventory and the saved delta state exactly as they were, and running it again is safe.

- A **full** run marks what it did not see as removed (and ends the permissions that
  vanished) only once the whole read succeeded.
- A **delta** (stateful) run hands the connector the last committed state, applies
  ``deleted: true``, and saves the new state in the same transaction as its last batch.

The connector runs in a thread of its own and hands over batches already mapped to rows, so
reading the application overlaps with writing. On an integration's first sync that thread
also formats the rows as COPY text, with ids drawn from the sequences through a connection of
its own (sequences are not transactional); the writing thread then only streams them.

Two writers share one shape. On PostgreSQL:

- an integration's first sync COPies resources, roles, implications, accounts and permissions
  straight into their tables (a key sent twice trips the table's unique key);
- later syncs COPy each batch into a temporary table and merge it with ``INSERT … ON CONFLICT
  DO UPDATE … WHERE … IS DISTINCT FROM …`` (unchanged rows are not rewritten; what a full run
  saw is kept in temporary tables and removals are an anti-join);
- permissions of accounts created by the run are COPied straight in (a new account holds
  nothing yet); those of existing accounts are compared with what they hold, read with one
  indexed query per batch, and only the differences are written;
- after a phase that changed a table by more than a tenth, its lookup columns are ANALYZEd, so
  the planner does not keep planning for the integration it believed empty.

On the embedded SQLite default the ORM's bulk upserts do the same job.

Accounts are linked to portal users by **correlation**: the same email, case-insensitively. A sync
sets, changes and clears only the links it made itself (``link_source = "correlation"``) and those
of accounts nobody linked yet; links made for an access grant or by a person, and service accounts,
are never changed by a sync (``Account.SYNC_MANAGED``). Both writers do it set-based: the
PostgreSQL merge decides the link with a CASE on the stored link source (and compares it, so an
unchanged account is still not rewritten), the ORM writer updates the batch's links in a few
statements after its upsert.

One module per stage; each imports only those below it (no cycles):

- :mod:`.jobs` — a sync as a job: :func:`sync_start` queues it, :func:`sync_run` runs it;
- :mod:`.run` — :func:`sync_integration`, one run in one transaction, and its failure record;
- :mod:`.postgres` — the PostgreSQL writer (COPY text, temporary tables, merges, ANALYZE);
- :mod:`.ingest` — the rows' shapes, the mapping of objects to rows and the ORM writer;
- :mod:`.events` — changes made outside the portal: recorded during a run, audited and alerted after;
- :mod:`.reader` — the reading thread and its batches (:data:`~.reader.BATCH_SIZE`);
- :mod:`.result` — :class:`SyncResult`, :class:`SyncError`, :class:`SyncCancelled`.
"""

from .jobs import sync_run, sync_start
from .result import SyncCancelled, SyncError, SyncResult
from .run import sync_integration

__all__ = ["SyncCancelled", "SyncError", "SyncResult", "sync_integration", "sync_run", "sync_start"]
