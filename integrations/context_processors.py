"""What every screen's frame needs to know about who is asking."""

from functools import cache

from .rights import manages_inventory


def navigation(request) -> dict:
    """``manages_inventory``: the frame shows the inventory screens. Evaluated only when a template
    asks, at most once per request."""
    user = getattr(request, "user", None)
    return {"manages_inventory": cache(lambda: manages_inventory(user))}
