"""Untrusted input, bounded: what the portal accepts from a request, said once for the API and the screens.

Bad input answers 400 — in the API's error shape (``{"error": {"code", "message", "fields"}}``) on API
URLs, as the 400 page on the screens — and never reaches a place where it would raise a 500:

- **JSON** (API bodies, JSON typed into a screen's form): at most :data:`MAX_JSON_DEPTH` levels of
  arrays and objects, and no NUL character in any string or key (PostgreSQL's text and jsonb cannot
  store one). :func:`load_json` parses, :class:`JSONParser` is the API's parser, :class:`BoundedJSONDecoder`
  the decoder of the Django admin's JSON fields.
- **Headers, query strings and form fields**: no NUL character (:class:`BadInputMiddleware`).
- **Oversized or malformed requests** (``DATA_UPLOAD_MAX_MEMORY_SIZE``, ``DATA_UPLOAD_MAX_NUMBER_FIELDS``,
  ``BadRequest`` raised anywhere): :func:`bad_request`, the project's ``handler400``.
- **Ids** typed or posted: :func:`parse_id` (ASCII digits that fit a bigint, nothing else).
- **Page sizes** of every table and API list: :func:`page_size` (a whole number up to a maximum;
  anything else is the default).
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import JsonResponse
from django.shortcuts import render
from django.views import defaults
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_JSON_DEPTH = 32
MAX_ID = 2**63 - 1  # a PostgreSQL bigint
API_PREFIXES = ("/api/", "/v3/")


class InputError(ValueError):
    """Input the portal refuses, with a message for the person who sent it."""


# -- JSON -------------------------------------------------------------------------------------------------


def check_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``value`` (parsed JSON) if it nests at most ``max_depth`` arrays/objects and holds no NUL character;
    :class:`InputError` otherwise. Walks without recursion, so no depth can exhaust the stack."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise InputError(f"The JSON is nested deeper than {max_depth} levels.")
            for key in item if isinstance(item, dict) else ():
                if isinstance(key, str) and "\x00" in key:
                    raise InputError("The JSON contains a NUL character (\\u0000).")
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, str) and "\x00" in item:
            raise InputError("The JSON contains a NUL character (\\u0000).")
    return value


def load_json(text: str | bytes) -> Any:
    """Parse JSON typed or posted by a person: ``json.JSONDecodeError`` when it is not JSON (with its line
    and column), :class:`InputError` when it nests too deep or holds a NUL character."""
    try:
        value = json.loads(text)
    except RecursionError:  # deeper than the interpreter's stack: far beyond the limit
        raise InputError(f"The JSON is nested deeper than {MAX_JSON_DEPTH} levels.") from None
    return check_json(value)


class BoundedJSONDecoder(json.JSONDecoder):
    """``json.JSONDecoder`` with the bounds of :func:`check_json`, for Django's ``forms.JSONField``
    (``decoder=``): JSON too deep or with a NUL is a ``JSONDecodeError``, the field's "Enter a valid JSON"."""

    def decode(self, s, *args, **kwargs):
        try:
            return check_json(super().decode(s, *args, **kwargs))
        except RecursionError:
            raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", s, 0) from None
        except InputError as exc:
            raise json.JSONDecodeError(str(exc), s, 0) from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the bounds of :func:`check_json` (the API's default parser)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        try:
            return check_json(data)
        except InputError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None


# -- ids and page sizes -----------------------------------------------------------------------------------


def parse_id(value: Any) -> int | None:
    """A database id from input: a positive whole number (an int, or ASCII digits) that fits a bigint;
    ``None`` for anything else (``"²"``, ``"-1"``, ``[1]``, ``{}``, ``True``, a 30-digit number...)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not (value.isascii() and value.isdigit() and len(value) <= 19):
            return None
        value = int(value)
    if isinstance(value, int) and 1 <= value <= MAX_ID:
        return value
    return None


def page_size(raw: Any, *, default: int, maximum: int) -> int:
    """The one pagination rule of the screens' tables and the API's lists: a whole number from 1 to
    ``maximum``; anything else (missing, negative, zero, not a number, larger) is ``default``."""
    size = parse_id(raw)
    return size if size is not None and size <= maximum else default


# -- requests ---------------------------------------------------------------------------------------------


def is_api(request) -> bool:
    return request.path.startswith(API_PREFIXES)


def api_error(message: str, *, code: str = "invalid", fields: dict | None = None, status: int = 400):
    """An error in the API's shape, for answers given outside DRF's views (middleware, handlers)."""
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status)


def _has_nul(query) -> str | None:
    for key, values in query.lists():
        if "\x00" in key or any("\x00" in v for v in values):
            return key.replace("\x00", "\\0")
    return None


class BadInputMiddleware:
    """Refuses a NUL character in a header, the query string or a form field (400) before any view reads
    it: no screen, filter or token lookup can store or search for one, and PostgreSQL would refuse it
    with a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for key, value in request.META.items():
            if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
                raise BadRequest(f"The header {key[5:].replace('_', '-').title()} contains a NUL character.")
        field = _has_nul(request.GET)
        if field is None and request.method == "POST":
            field = _has_nul(request.POST)  # empty unless form-encoded: JSON bodies are the parser's
        if field is not None:
            raise BadRequest(f"The field {field!r} contains a NUL character.")
        return self.get_response(request)


def _message(exception) -> tuple[str, str]:
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return "too_large", f"The request body is larger than the {limit:,} bytes accepted."
    if isinstance(exception, TooManyFieldsSent):
        return "too_many_fields", f"More than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields were sent."
    if isinstance(exception, BadRequest) and exception.args:
        return "bad_request", str(exception)
    if isinstance(exception, SuspiciousOperation):  # says nothing of what looked suspicious
        return "bad_request", "The request was refused."
    return "bad_request", "The request is malformed."


def bad_request(request, exception=None):
    """``handler400``: the API's error shape on API URLs, the styled 400 page elsewhere."""
    code, message = _message(exception)
    if is_api(request):
        return api_error(message, code=code)
    try:
        return render(request, "400.html", {"message": message}, status=400)
    except Exception:  # a request too broken to render a page with (e.g. a disallowed host)
        return defaults.bad_request(request, exception)
