"""SailPoint ISC-compatible sources: ``GET``/``PATCH /v3/sources/{id}`` (also under ``/api/``).

Scripts written for SailPoint Identity Security Cloud's ``/v3/sources`` API change a
source's filters with an RFC 6902 JSON Patch; the same scripts work against an integration
here. A source is an integration seen in ISC's shape. Only the paths in
:data:`PATCHABLE` may be changed (``test`` may read any path); every change goes through
``integration_update`` (validated by ``Integration.full_clean``, audited), all or nothing.
"""

from __future__ import annotations

import jsonpatch
import jsonpointer
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from connectors.sdk import Filter, FilterError
from governance.api import ApiError, IsAuthenticatedUser
from governance.inputs import JSONParser, parse_id

from .. import services
from ..catalogue import get_connector
from ..rights import manageable_integrations
from .permissions import ManagesInventory

PATCH_MEDIA_TYPE = "application/json-patch+json"
OPS = ("add", "remove", "replace", "test")
FIELD_POINTERS = {"name": "/name", "owner": "/owner", "connector_attributes": "/connectorAttributes"}

PATCHABLE_DOC = """Patchable paths (others answer 400 `path_not_allowed`; `test` may read any path):

| path | value |
|---|---|
| `/name` | the integration's name (unique) |
| `/owner` | `{"type": "IDENTITY", "id": "<user id or username>"}`, or `null` / `remove` for none (admins only: 403 otherwise) |
| `/connectorAttributes/filterString` | a filter string: objects of every type that match are excluded |
| `/connectorAttributes/<type>.filterString` | a filter for one object type, e.g. `group.filterString` |
| `/connectorAttributes/stateful` | `true` for delta syncs, when the connector supports them |

Operations: `add`, `replace`, `remove`, `test` (RFC 6902). As in ISC, where every source has
its connector attributes, `replace` also sets a connector attribute that is not set yet; `remove`
needs it to exist. A key containing `/` is written `~1`, a `~`
is written `~0` (RFC 6901); `group.filterString` needs no escaping. Filters are parsed and checked
against the connector's schema: an error answers 400 `invalid_filter` with its `position`.
The whole patch applies or nothing does."""


class JsonPatchParser(JSONParser):
    """The API's bounded JSON parser (depth, no NUL), for RFC 6902's media type."""

    media_type = PATCH_MEDIA_TYPE


def _is_connector_attribute(key: str) -> bool:
    return key in ("filterString", "stateful") or (key.endswith(".filterString") and len(key) > 13)


def _allowed(parts: list[str]) -> bool:
    if parts in (["name"], ["owner"]):
        return True
    return len(parts) == 2 and parts[0] == "connectorAttributes" and _is_connector_attribute(parts[1])


def source_of(integration) -> dict:
    """An integration in ISC's source shape. Secret connection items are never included."""
    try:
        label = get_connector(integration.application).spec.label
    except Exception:  # an uninstalled connector still shows
        label = integration.application
    owner = integration.owner
    return {
        "id": str(integration.pk),
        "name": integration.name,
        "description": "",
        "owner": {"type": "IDENTITY", "id": str(owner.pk), "name": owner.get_username()} if owner else None,
        "connector": integration.application,
        "connectorName": label,
        "type": label,
        "connectorAttributes": {**integration.connection_config, **integration.connector_attributes},
        "features": [],
        "status": integration.last_sync_status,
        "created": integration.created_at.isoformat(),
        "modified": integration.updated_at.isoformat(),
    }


SourceSchema = inline_serializer(
    "Source",
    fields={
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "description": serializers.CharField(),
        "owner": inline_serializer(
            "SourceOwnerRef",
            fields={
                "type": serializers.CharField(),
                "id": serializers.CharField(),
                "name": serializers.CharField(),
            },
            allow_null=True,
        ),
        "connector": serializers.CharField(),
        "connectorName": serializers.CharField(),
        "type": serializers.CharField(),
        "connectorAttributes": serializers.DictField(),
        "features": serializers.ListField(child=serializers.CharField()),
        "status": serializers.CharField(),
        "created": serializers.DateTimeField(),
        "modified": serializers.DateTimeField(),
    },
)

# The body of a PATCH: an array of these (a component of the schema, so clients and schema-driven tests
# generate real patches).
PatchOperations = inline_serializer(
    "JsonPatchOperation",
    fields={
        "op": serializers.ChoiceField(choices=OPS),
        "path": serializers.CharField(),
        "value": serializers.JSONField(required=False),
    },
    many=True,
)


class SourceView(GenericAPIView):
    """One integration as a SailPoint ISC source."""

    permission_classes = [IsAuthenticatedUser, ManagesInventory]
    parser_classes = [JsonPatchParser]
    pagination_class = None
    filter_backends = []

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return manageable_integrations(None)
        return manageable_integrations(self.request.user).select_related("owner")

    def get_object(self):
        pk = parse_id(self.kwargs["id"])
        if pk is None:
            raise NotFound("No such source.")
        self.kwargs["pk"] = pk
        return super().get_object()

    @extend_schema(
        operation_id="source_get",
        summary="A source (an integration in SailPoint ISC's shape)",
        responses={200: SourceSchema},
    )
    def get(self, request, id):
        return Response(source_of(self.get_object()))

    @extend_schema(
        operation_id="source_patch",
        summary="Patch a source (RFC 6902 JSON Patch, SailPoint ISC-compatible)",
        description=PATCHABLE_DOC + "\n\nAlso served at `/v3/sources/{id}` for scripts written for ISC.",
        request={PATCH_MEDIA_TYPE: PatchOperations},
        responses={
            200: SourceSchema,
            400: OpenApiResponse(
                description="Malformed patch, path not allowed, or invalid value or filter."
            ),
            415: OpenApiResponse(description="The body is not application/json-patch+json."),
        },
    )
    def patch(self, request, id):
        integration = self.get_object()
        doc = source_of(integration)
        ops = self._as_in_isc(self._operations(request.data))
        try:
            patched = jsonpatch.JsonPatch(ops).apply(doc)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise ApiError(f"A test operation failed: {exc}", code="patch_test_failed") from None
        except jsonpatch.JsonPatchConflict as exc:
            raise ApiError(f"The patch does not apply: {exc}", code="patch_conflict") from None
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, ValueError) as exc:
            raise ApiError(f"Malformed patch: {exc}", code="invalid_patch") from None
        changes = self._changes(integration, doc, patched)
        if changes:
            try:
                services.integration_update(actor=request.user, integration=integration, **changes)
            except DjangoValidationError as exc:
                fields = {
                    FIELD_POINTERS.get(key, key): messages
                    for key, messages in (
                        exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
                    ).items()
                }
                message = " ".join(m for messages in fields.values() for m in messages)
                raise ApiError(message, fields=fields) from None
        integration.refresh_from_db()
        return Response(source_of(integration))

    # -- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _as_in_isc(ops: list[dict]) -> list[dict]:
        """``replace`` of a connector attribute sets it even when it is not set yet, as ISC scripts expect
        (their sources carry every attribute): on an object member that is ``add``; the rest is RFC 6902."""

        def member(path: str) -> bool:  # /connectorAttributes/<key>
            parts = jsonpointer.JsonPointer(path).parts
            return len(parts) == 2 and parts[0] == "connectorAttributes"

        return [{**op, "op": "add"} if op["op"] == "replace" and member(op["path"]) else op for op in ops]

    @staticmethod
    def _operations(body) -> list[dict]:
        if not isinstance(body, list):
            raise ApiError(
                "The body must be a JSON array of patch operations (RFC 6902).", code="invalid_patch"
            )
        errors: dict[str, list[str]] = {}
        for i, op in enumerate(body):
            if not isinstance(op, dict):
                errors[str(i)] = ["An operation is an object with 'op' and 'path'."]
                continue
            unknown = sorted(set(op) - {"op", "path", "value", "from"})
            if unknown:
                errors[f"{i}.{unknown[0]}"] = [f"Unknown member(s): {', '.join(unknown)}."]
                continue
            if op.get("op") not in OPS:
                errors[f"{i}.op"] = [f"One of: {', '.join(OPS)} (move and copy are not supported)."]
                continue
            path = op.get("path")
            if not isinstance(path, str):
                errors[f"{i}.path"] = ["A JSON Pointer string, e.g. /connectorAttributes/filterString."]
                continue
            if op["op"] in ("add", "replace", "test") and "value" not in op:
                errors[f"{i}.value"] = ["This operation needs a value."]
                continue
            try:
                parts = jsonpointer.JsonPointer(path).parts
            except jsonpointer.JsonPointerException as exc:
                errors[f"{i}.path"] = [f"Malformed JSON Pointer: {exc}"]
                continue
            if op["op"] != "test" and not _allowed(parts):
                raise ApiError(
                    f"The path {path!r} cannot be patched; patchable: /name, /owner, "
                    "/connectorAttributes/filterString, /connectorAttributes/<type>.filterString, "
                    "/connectorAttributes/stateful.",
                    code="path_not_allowed",
                    fields={f"{i}.path": [f"{path!r} is not patchable."]},
                )
        if errors:
            raise ApiError("Malformed patch.", code="invalid_patch", fields=errors)
        return body

    def _changes(self, integration, before: dict, after: dict) -> dict:
        if not isinstance(after, dict):
            raise ApiError("The patch replaced the whole source.", code="path_not_allowed")
        changes: dict = {}
        if after.get("name") != before["name"]:
            name = after.get("name")
            if not isinstance(name, str) or not name.strip():
                raise ApiError(
                    "The name must be a non-empty string.", fields={"/name": ["A non-empty string."]}
                )
            changes["name"] = name
        if after.get("owner", None) != before["owner"]:
            changes["owner"] = self._owner(after.get("owner"))
        ca_before = before["connectorAttributes"]
        ca_after = after.get("connectorAttributes")
        if ca_after != ca_before:
            if not isinstance(ca_after, dict):
                raise ApiError(
                    "connectorAttributes must stay an object.",
                    code="path_not_allowed",
                    fields={"/connectorAttributes": ["Patch its keys, not the object."]},
                )
            attributes = {k: v for k, v in ca_after.items() if _is_connector_attribute(k)}
            self._check_filters(integration, attributes)
            changes["connector_attributes"] = attributes
        return changes

    @staticmethod
    def _owner(value):
        if value is None:
            return None
        ref = value.get("id") or value.get("name") if isinstance(value, dict) else None
        if not isinstance(ref, (str, int)) or isinstance(ref, bool) or str(ref) == "":
            raise ApiError(
                'The owner is {"type": "IDENTITY", "id": "<user id or username>"} or null.',
                fields={"/owner": ["An identity reference with an id."]},
            )
        users = get_user_model().objects.filter(is_active=True)
        ref = str(ref)
        user = (users.filter(pk=pk).first() if (pk := parse_id(ref)) else None) or users.filter(
            username=ref
        ).first()
        if user is None:
            raise ApiError(f"No user {ref!r}.", fields={"/owner": [f"No user {ref!r}."]})
        return user

    @staticmethod
    def _check_filters(integration, attributes: dict) -> None:
        """Report a malformed filter with its position before the full validation (which names the rest)."""
        connector = get_connector(integration.application)
        for key, value in attributes.items():
            if key == "stateful" or not isinstance(value, str) or not value.strip():
                continue
            object_type = None if key == "filterString" else key.removesuffix(".filterString")
            if object_type is not None and object_type not in {
                "account",
                *connector.spec.entitlement_schemas,
            }:
                continue  # full_clean names the allowed keys
            try:
                Filter.validate(value, connector.spec.attribute_names(object_type))
            except FilterError as exc:
                pointer = "/connectorAttributes/" + key.replace("~", "~0").replace("/", "~1")
                raise ApiError(
                    f"{key}: {exc}",
                    code="invalid_filter",
                    fields={pointer: [str(exc)]},
                    position=exc.position,
                    path=pointer,
                ) from None


@extend_schema(exclude=True)
class SourceAliasView(SourceView):
    """``/v3/sources/{id}``: the path ISC scripts use, without the ``/api`` prefix."""
