"""What the apps above the inventory plug into: the inventory never imports them, they register here.

Each hook is a list of functions an app registers when it is ready (``AppConfig.ready``); the
inventory calls them all and combines what they answer.

- :data:`workflow_pending_requests` — ``(workflow) -> int``: how many undecided requests follow an
  approval workflow; its editor and its delete page say so (just-in-time access registers it).
- :data:`permission_provenance` — ``(permissions, *, viewer) -> {permission_id: [{"kind", "label", "url"}]}``:
  how each permission came to be held, as far as the app knows (just-in-time access: "granted by access
  request #N (approved by …)"); a person's page and the people API say so next to what the inventory knows
  itself (found in the application, implied by another role, a birthright). ``url`` is empty where
  ``viewer`` may not open the page it names.
- :data:`open_requests_of` — ``(user, *, viewer, limit) -> {"total": int, "rows": [{"id", "label", "status",
  "url"}]}``: the open requests giving ``user`` access, newest first, at most ``limit`` rows (just-in-time
  access registers it; a person's page lists them).
- :data:`after_sync` — ``(integration, result)``: called by every successful sync inside its transaction,
  after the inventory took what the application reported and before the sync is recorded as done. An
  exception fails the sync and nothing of it is kept (identities registers its identity sources' apply).
- :data:`integration_links` — ``(integration, *, viewer) -> [{"label", "url", "icon"}]``: buttons on an
  integration's page for what the apps above keep about it (identities: its identity source, for admins).

The apps above the inventory call them too: that is how ``identities`` reads what ``access`` knows without
importing a peer.
"""

from __future__ import annotations

from collections.abc import Callable


class Hook:
    """Functions registered by the apps above the inventory, called in the order they registered."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._functions: list[Callable] = []

    def register(self, function: Callable) -> Callable:
        if function not in self._functions:
            self._functions.append(function)
        return function

    def __call__(self, *args, **kwargs) -> list:
        return [function(*args, **kwargs) for function in self._functions]

    def merged(self, *args, **kwargs) -> dict:
        """The answers of hooks that map keys to lists, merged: each key's lists one after the other."""
        out: dict = {}
        for answer in self(*args, **kwargs):
            for key, items in answer.items():
                out.setdefault(key, []).extend(items)
        return out


workflow_pending_requests = Hook("workflow_pending_requests")
permission_provenance = Hook("permission_provenance")
open_requests_of = Hook("open_requests_of")
after_sync = Hook("after_sync")
integration_links = Hook("integration_links")
