"""Base classes of the REST API: authentication, throttling, pagination, errors, serializers.

Every app builds its endpoints on these (``integrations/api``, ``access/api``): :class:`ScopedViewSet`
scopes each queryset to what the caller may see; nothing here knows the apps.

- Authentication: the browser's session, or a personal API token sent as
  ``Authorization: Bearer <token>`` (see :mod:`governance.tokens`). A missing, malformed,
  unknown, expired or revoked token answers 401; an address with too many failed tokens gets 429
  for every token until its window ends (``token_failure`` rate). Only a session creates tokens.
- Throttling: per token (``token`` rate), per signed-in user (``user``), per client address
  for anonymous calls (``anon``); 429 with ``Retry-After``. Rates live in
  ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``.
- Errors: one JSON shape, ``{"error": {"code", "message", "fields"}}``.
- Lists page with cursors and take ``?fields=a,b`` (sparse fieldsets).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.fields import get_error_detail
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .api_core import (
    ApiRateThrottle,
    BearerTokenAuthentication,
    IsAuthenticatedUser,
    SessionAuthentication,
)
from .models import ApiToken
from .paging import ApiCursorPagination
from .tokens import api_token_create, api_token_revoke

__all__ = [
    "ApiRateThrottle",
    "BearerTokenAuthentication",
    "IsAuthenticatedUser",
    "SessionAuthentication",
    "ApiError",
    "exception_handler",
    "ApiCursorPagination",
    "StrictSerializer",
    "StrictModelSerializer",
    "SparseFieldsMixin",
    "CSVRenderer",
    "stream_csv",
    "ApiTokenViewSet",
]

# -- authentication (the classes live in api_auth: DRF imports them while it loads) ------------------


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = SessionAuthentication
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "The browser session of a signed-in user (writes need the CSRF token).",
        }


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (`gov_<prefix>_<secret>`), created at `/api/tokens/`.",
        }


# -- errors -----------------------------------------------------------------------------------------------


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """Nested serializer errors as ``{"steps.0.mode": ["..."]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list) and any(isinstance(v, (Mapping, list)) for v in detail):
        for i, value in enumerate(detail):
            if value:
                out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    elif isinstance(detail, list):
        out[prefix or "non_field_errors"] = [str(v) for v in detail]
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


class ApiError(exceptions.APIException):
    """A 400 with a specific code and extra members in the error body (e.g. a filter's position)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, code: str = "invalid", fields: dict | None = None, **extra):
        super().__init__(detail=message, code=code)
        self.code = code
        self.fields = fields or {}
        self.extra = extra


def exception_handler(exc, context):
    """Every API error as ``{"error": {"code": ..., "message": ..., "fields": {...}}}``."""
    if isinstance(exc, DjangoValidationError):
        detail = get_error_detail(exc)
        if isinstance(detail, dict) and "__all__" in detail:
            detail["non_field_errors"] = detail.pop("__all__")
        exc = exceptions.ValidationError(detail=detail)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):  # a service's refusal says who may do it
        exc = exceptions.PermissionDenied(*exc.args)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    extra: dict = {}
    fields: dict[str, list[str]] = {}
    if isinstance(exc, ApiError):
        code, message, fields, extra = exc.code, str(exc.detail), exc.fields, exc.extra
    elif isinstance(exc, exceptions.ValidationError):
        code = "invalid"
        fields = _flatten(exc.detail)
        general = fields.pop("non_field_errors", None)
        if general:
            message = " ".join(general)
        else:
            message = "Invalid input: " + ", ".join(sorted(fields)) + "."
    else:
        code = exc.default_code if isinstance(exc, exceptions.APIException) else "error"
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        if isinstance(codes, str):
            code = codes
        message = str(exc.detail) if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = {"error": {"code": code, "message": message, "fields": fields, **extra}}
    return response


# -- serializers ------------------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Refuses unknown and read-only fields in input, naming them, instead of ignoring them."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            writable = {name for name, f in self.fields.items() if not f.read_only}
            errors = {}
            for key in data:
                if key in writable:
                    continue
                errors[key] = ["This field is read-only."] if key in self.fields else ["Unknown field."]
            if errors:
                raise exceptions.ValidationError(errors)
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    """A ModelSerializer for validation and output only: writes go through the services."""

    def create(self, validated_data):  # pragma: no cover - a programming error, not client input
        raise NotImplementedError("write through the service")

    def update(self, instance, validated_data):  # pragma: no cover
        raise NotImplementedError("write through the service")


class SparseFieldsMixin:
    """``?fields=a,b``: only these fields in the output (unknown names: 400 naming them)."""

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        request = getattr(self, "request", None)
        raw = request.query_params.get("fields") if request is not None else None
        if raw is None or request.method not in ("GET", "HEAD"):
            return serializer
        wanted = [f.strip() for f in raw.split(",") if f.strip()]
        target = serializer.child if isinstance(serializer, serializers.ListSerializer) else serializer
        unknown = sorted(set(wanted) - set(target.fields))
        if unknown:
            raise exceptions.ValidationError(
                {"fields": [f"Unknown field(s): {', '.join(unknown)}. Known: {', '.join(target.fields)}."]}
            )
        if wanted:
            for name in list(target.fields):
                if name not in wanted:
                    target.fields.pop(name)
        return serializer


# -- CSV --------------------------------------------------------------------------------------------------


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell a spreadsheet shows as text, never runs: text starting like a formula (``=``, ``+``, ``-``,
    ``@``, tab, carriage return) gets a leading single quote (OWASP's advice against CSV injection).
    Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _SafeWriter:
    """``csv.writer`` whose every cell goes through :func:`csv_cell`: the only CSV writer of the portal."""

    def __init__(self, stream):
        self._writer = csv.writer(stream)

    def writerow(self, row):
        return self._writer.writerow([csv_cell(v) for v in row])


class CSVRenderer(BaseRenderer):
    """``text/csv`` (``?format=csv``). Lists stream through :func:`stream_csv`; this renders the rest."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        buffer = io.StringIO()
        writer = _SafeWriter(buffer)
        if isinstance(data, Mapping) and "error" in data:
            writer.writerow(["code", "message"])
            writer.writerow([data["error"].get("code", ""), data["error"].get("message", "")])
        elif isinstance(data, Mapping):
            writer.writerow(list(data))
            writer.writerow([data[k] for k in data])
        return buffer.getvalue().encode()


class _Echo:
    def write(self, value):
        return value


def stream_csv(header: list[str], rows: Iterable[list], filename: str) -> StreamingHttpResponse:
    """A CSV download written row by row as it is read (memory stays flat however long); cells that would
    start a formula are neutralised (:func:`csv_cell`)."""
    writer = _SafeWriter(_Echo())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# -- personal API tokens ----------------------------------------------------------------------------------


class ApiTokenSerializer(StrictModelSerializer):
    token = serializers.SerializerMethodField(
        help_text="The token itself: returned once, by the request that creates it."
    )
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "active",
            "token",
        ]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]
        extra_kwargs = {"expires_at": {"required": False, "allow_null": True}}

    def get_token(self, obj) -> str | None:
        return self.context.get("secret")


class ApiTokenViewSet(
    SparseFieldsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's own personal API tokens. DELETE revokes (the row stays, for the audit log).

    Creating one needs the browser session: a request authenticated by a token answers 403.
    Without ``expires_at`` a token gets the longest lifetime (``API_TOKEN_MAX_DAYS``); a later
    expiry answers 400.
    """

    serializer_class = ApiTokenSerializer
    permission_classes = [IsAuthenticatedUser]
    cursor_ordering = "-id"
    queryset = ApiToken.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ApiToken.objects.none()
        return ApiToken.objects.filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        if isinstance(request.auth, ApiToken):
            raise exceptions.PermissionDenied(
                "An API token cannot create tokens: create one signed in, on the API tokens screen."
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row, secret = api_token_create(actor=request.user, **serializer.validated_data)
        out = self.get_serializer(row, context={**self.get_serializer_context(), "secret": secret})
        return Response(out.data, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        api_token_revoke(actor=request.user, token=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


# -- the base of every app's endpoints ---------------------------------------------------------------


FIELDS_PARAM = OpenApiParameter(
    "fields",
    OpenApiTypes.STR,
    description="Comma-separated field names: only these fields in the output (sparse fieldsets).",
)
LIST = extend_schema(parameters=[FIELDS_PARAM])
RETRIEVE = extend_schema(parameters=[FIELDS_PARAM])
NO_BODY = OpenApiResponse(description="Done; no content.")


class ScopedViewSet(SparseFieldsMixin, viewsets.GenericViewSet):
    """Base of the endpoints: querysets scoped to what the caller may see, PATCH (never PUT)."""

    permission_classes = [IsAuthenticatedUser]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    cursor_ordering = "pk"
    detail_serializer_class = None

    def scoped(self, user):  # the objects ``user`` may see
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return self.scoped(self.request.user)

    def get_serializer_class(self):
        if self.action != "list" and self.detail_serializer_class is not None:
            return self.detail_serializer_class
        return self.serializer_class

    def _validated(self, instance=None, partial=False) -> dict:
        serializer = self.get_serializer(instance, data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _out(self, instance, code=status.HTTP_200_OK) -> Response:
        # Fresh, with its prefetches (the caller may have just given away their right to see it).
        instance = self.get_queryset().filter(pk=instance.pk).first() or instance
        return Response(self.get_serializer(instance).data, status=code)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([])
def not_found(request, rest=""):
    """Any other URL under ``/api/``: 404 in the API's error shape."""
    raise exceptions.NotFound("No such API endpoint.")
