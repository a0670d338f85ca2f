"""What the apps above the inventory plug into: the inventory never imports them, they register here.

Each hook is a list of functions an app registers when it is ready (``AppConfig.ready``); the
inventory calls them all and combines what they answer.

- :data:`workflow_pending_requests` — ``(workflow) -> int``: how many undecided requests follow an
  approval workflow; its editor and its delete page say so (just-in-time access registers it).
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


workflow_pending_requests = Hook("workflow_pending_requests")
