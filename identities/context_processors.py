"""What the frame needs to know about people: whether to show People in the navigation."""

from functools import cache

from .rights import sees_others


def navigation(request) -> dict:
    """``sees_people``: the user may see anybody besides themselves. Evaluated only when a template asks,
    at most once per request."""
    user = getattr(request, "user", None)
    return {"sees_people": cache(lambda: sees_others(user))}
