"""Paging of the REST API's lists: cursors, with the page size rule every table of the portal follows.

``?page_size=`` is a whole number from 1 to :attr:`ApiCursorPagination.max_page_size`; any other value
(negative, zero, not a number, larger) gives the default page, as ``?per_page=`` does on the screens
(:func:`governance.inputs.page_size`). A cursor is the portal's own, opaque: one that does not decode,
or whose position is not a value of the ordering field (``base64("p=abc")`` on an id), answers 400.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.pagination import CursorPagination

from .inputs import page_size


class ApiCursorPagination(CursorPagination):
    """Cursor pages (stable under inserts, fast at any depth). ``?page_size=`` up to 1000.

    The view names its ordering in ``cursor_ordering`` (unique, or nearly: ties are paged
    by offset).
    """

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
    ordering = "-pk"

    def get_ordering(self, request, queryset, view):
        ordering = getattr(view, "cursor_ordering", None) or self.ordering
        return (ordering,) if isinstance(ordering, str) else tuple(ordering)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        return page_size(raw, default=type(self).page_size, maximum=self.max_page_size)

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except exceptions.NotFound:
            raise exceptions.ValidationError({"cursor": "Invalid cursor."}) from None
        if cursor is not None and cursor.position is not None:
            name = self.ordering[0].lstrip("-")
            try:
                field = self._model._meta.pk if name == "pk" else self._model._meta.get_field(name)
                field.to_python(cursor.position)
            except (DjangoValidationError, FieldDoesNotExist, TypeError, ValueError):
                raise exceptions.ValidationError({"cursor": "Invalid cursor."}) from None
        return cursor
