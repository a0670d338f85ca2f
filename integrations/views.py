from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404
from django.views.decorators.cache import cache_control

from .catalogue import get_connector


@login_required
@cache_control(max_age=3600, private=True)
def application_icon(request, slug: str):
    """The icon a connector ships in its folder."""
    try:
        icon = get_connector(slug).spec.icon
    except ValidationError:
        raise Http404("unknown application") from None
    if icon is None or not icon.is_file():
        raise Http404("this connector has no icon")
    return FileResponse(icon.open("rb"), content_type="image/svg+xml" if icon.suffix == ".svg" else None)
