"""What every screen's frame needs to know about who is asking."""

from functools import cache

from .access import is_admin, manageable_integrations, manageable_resources


def navigation(request) -> dict:
    """``manages_inventory``: the user owns or maintains something (admins: everything), so the frame
    shows the inventory screens. Evaluated only when a template asks, at most once per request."""
    user = getattr(request, "user", None)

    @cache
    def manages_inventory() -> bool:
        if user is None or not user.is_authenticated:
            return False
        return is_admin(user) or manageable_integrations(user).exists() or manageable_resources(user).exists()

    return {"manages_inventory": manages_inventory}
