"""What a sync returns, and how it fails: :class:`SyncResult`, :class:`SyncError`, :class:`SyncCancelled`."""

from __future__ import annotations

from dataclasses import dataclass, field


class SyncError(Exception):
    """A sync failed; the message names the integration and what went wrong."""


class SyncCancelled(SyncError):
    """A sync was cancelled; nothing it read was written."""


@dataclass
class SyncResult:
    full: bool
    counts: dict[str, int] = field(default_factory=dict)
    new_resource_ids: list[int] = field(default_factory=list)
    new_role_ids: list[int] = field(default_factory=list)
    external_grants: list[tuple[int, int]] = field(default_factory=list)  # (account id, role id)
    external_revokes: list[tuple[int, int]] = field(default_factory=list)

    def add(self, key: str, n: int) -> None:
        if n:
            self.counts[key] = self.counts.get(key, 0) + n
