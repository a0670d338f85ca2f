"""SailPoint ISC-compatible source patch: PATCH /v3/sources/{id} with an RFC 6902 JSON Patch."""

import json

import pytest

from governance.models import AuditEvent

pytestmark = pytest.mark.django_db
PATCH = "application/json-patch+json"


def patch(client, integration, ops, *, prefix="/api", content_type=PATCH):
    body = ops if isinstance(ops, (bytes, str)) else json.dumps(ops)
    return client.generic("PATCH", f"{prefix}/v3/sources/{integration.pk}", body, content_type=content_type)


@pytest.mark.parametrize("prefix", ["/api", ""])
def test_set_filters_isc_style(client_for, world, prefix):
    mine = world["mine"]
    ops = [
        {"op": "add", "path": "/connectorAttributes/filterString", "value": 'department == "Sales"'},
        {"op": "add", "path": "/connectorAttributes/group.filterString", "value": 'name.startsWith("tmp-")'},
    ]
    response = patch(client_for("owner"), mine, ops, prefix=prefix)
    assert response.status_code == 200, response.content
    source = response.json()
    assert source["id"] == str(mine.pk) and source["connector"] == "demo"
    assert source["connectorAttributes"]["group.filterString"] == 'name.startsWith("tmp-")'
    assert "apiToken" not in source["connectorAttributes"]  # secrets never leave
    mine.refresh_from_db()
    assert mine.connector_attributes == {
        "filterString": 'department == "Sales"',
        "group.filterString": 'name.startsWith("tmp-")',
    }
    event = AuditEvent.objects.filter(action="integration.update", object_id=str(mine.pk)).first()
    assert event.actor_repr == "owner" and "connector_attributes" in event.details["changes"]
    # Now it exists, replace and remove work too.
    ops = [
        {"op": "replace", "path": "/connectorAttributes/filterString", "value": 'title == "Intern"'},
        {"op": "remove", "path": "/connectorAttributes/group.filterString"},
    ]
    assert patch(client_for("maintainer"), mine, ops, prefix=prefix).status_code == 200
    mine.refresh_from_db()
    assert mine.connector_attributes == {"filterString": 'title == "Intern"'}


def test_name_and_owner(client_for, people, world):
    mine = world["mine"]
    ops = [
        {"op": "replace", "path": "/name", "value": "Directory (prod)"},
        {"op": "replace", "path": "/owner", "value": {"type": "IDENTITY", "id": "maint"}},
    ]
    response = patch(client_for("admin"), mine, ops)
    assert response.status_code == 200
    assert response.json()["owner"] == {
        "type": "IDENTITY",
        "id": str(people["maintainer"].pk),
        "name": "maint",
    }
    mine.refresh_from_db()
    assert mine.name == "Directory (prod)" and mine.owner == people["maintainer"]
    assert (
        patch(client_for("admin"), mine, [{"op": "replace", "path": "/owner", "value": None}]).status_code
        == 200
    )
    mine.refresh_from_db()
    assert mine.owner is None


def _unchanged(integration, before):
    integration.refresh_from_db()
    assert (integration.name, integration.owner_id, integration.connector_attributes) == before


@pytest.mark.parametrize(
    "ops, code",
    [
        (
            [{"op": "replace", "path": "/connectorAttributes/url", "value": "https://evil"}],
            "path_not_allowed",
        ),
        ([{"op": "replace", "path": "/connectorAttributes/apiToken", "value": "x"}], "path_not_allowed"),
        ([{"op": "add", "path": "/connector", "value": "ldap"}], "path_not_allowed"),
        ([{"op": "add", "path": "/connectorAttributes", "value": {}}], "path_not_allowed"),
        ([{"op": "add", "path": "/connectorAttributes/a~1b.filterString~2", "value": "x"}], "invalid_patch"),
        ([{"op": "remove", "path": "/connectorAttributes/filterString"}], "patch_conflict"),
        ([{"op": "replace", "path": "/name/first", "value": "x"}], "path_not_allowed"),
        ([{"op": "move", "from": "/name", "path": "/connectorAttributes/filterString"}], "invalid_patch"),
        ([{"op": "add", "path": "/connectorAttributes/filterString"}], "invalid_patch"),
        ([{"op": "add", "path": "connectorAttributes/filterString", "value": "x"}], "invalid_patch"),
        ([{"op": "add", "path": "/name", "value": "x", "extra": 1}], "invalid_patch"),
        (
            [
                {"op": "test", "path": "/name", "value": "Not mine"},
                {"op": "add", "path": "/name", "value": "Y"},
            ],
            "patch_test_failed",
        ),
        ({"op": "add", "path": "/name", "value": "x"}, "invalid_patch"),
        (["add"], "invalid_patch"),
        ([{"op": "add", "path": "/name", "value": ""}], "invalid"),
        ([{"op": "add", "path": "/name", "value": 5}], "invalid"),
        ([{"op": "add", "path": "/name", "value": "Theirs"}], "invalid"),
        ([{"op": "add", "path": "/owner", "value": {"id": "nobody-such"}}], "invalid"),
        ([{"op": "add", "path": "/owner", "value": "root"}], "invalid"),
        ([{"op": "add", "path": "/connectorAttributes/filterString", "value": 5}], "invalid"),
        (
            [{"op": "add", "path": "/connectorAttributes/nosuchtype.filterString", "value": "a == 1"}],
            "invalid",
        ),
        (
            [{"op": "add", "path": "/connectorAttributes/group.filterString", "value": "colour == 1"}],
            "invalid",
        ),
        ([{"op": "add", "path": "/connectorAttributes/stateful", "value": "yes"}], "invalid"),
    ],
)
def test_bad_patches_are_400_and_change_nothing(client_for, world, ops, code):
    mine = world["mine"]
    before = (mine.name, mine.owner_id, mine.connector_attributes)
    response = patch(client_for("owner"), mine, ops)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    _unchanged(mine, before)


def test_filter_error_reports_its_position(client_for, world):
    ops = [{"op": "add", "path": "/connectorAttributes/group.filterString", "value": 'name == "x" && ('}]
    response = patch(client_for("owner"), world["mine"], ops)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filter"
    assert error["position"] == 16 and error["path"] == "/connectorAttributes/group.filterString"
    assert "/connectorAttributes/group.filterString" in error["fields"]


def test_unknown_attribute_in_filter_names_it(client_for, world):
    ops = [{"op": "add", "path": "/connectorAttributes/group.filterString", "value": 'colour == "red"'}]
    response = patch(client_for("owner"), world["mine"], ops)
    assert response.status_code == 400
    assert "colour" in response.json()["error"]["message"]
    assert "/connectorAttributes" in response.json()["error"]["fields"]


def test_replace_sets_a_connector_attribute_not_set_yet_as_in_isc(client_for, world):
    mine = world["mine"]
    assert "filterString" not in mine.connector_attributes
    ops = [{"op": "replace", "path": "/connectorAttributes/filterString", "value": 'department == "Legal"'}]
    response = patch(client_for("owner"), mine, ops)
    assert response.status_code == 200, response.content
    assert response.json()["connectorAttributes"]["filterString"] == 'department == "Legal"'
    # Removed earlier in the same patch, a replace sets it again.
    ops = [
        {"op": "remove", "path": "/connectorAttributes/filterString"},
        {"op": "replace", "path": "/connectorAttributes/filterString", "value": 'department == "HR"'},
    ]
    assert patch(client_for("owner"), mine, ops).status_code == 200
    mine.refresh_from_db()
    assert mine.connector_attributes["filterString"] == 'department == "HR"'
    # replace elsewhere stays RFC 6902: the owner of a source without one cannot be "replaced" into a path.
    bad = [{"op": "replace", "path": "/owner/id", "value": "x"}]
    assert patch(client_for("owner"), mine, bad).status_code == 400


def test_passing_test_operation_applies(client_for, world):
    ops = [
        {"op": "test", "path": "/connector", "value": "demo"},
        {"op": "add", "path": "/connectorAttributes/filterString", "value": 'title == "x"'},
    ]
    assert patch(client_for("owner"), world["mine"], ops).status_code == 200


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "application/merge-patch+json"])
def test_other_content_types_are_415(client_for, world, content_type):
    ops = [{"op": "add", "path": "/connectorAttributes/filterString", "value": 'title == "x"'}]
    response = patch(client_for("owner"), world["mine"], ops, content_type=content_type)
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"
    world["mine"].refresh_from_db()
    assert world["mine"].connector_attributes == {}


def test_malformed_json_is_400(client_for, world):
    response = patch(client_for("owner"), world["mine"], b'[{"op": "add",')
    assert response.status_code == 400 and response.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize(
    "who, mine, theirs",
    [
        ("admin", 200, 200),
        ("owner", 200, 404),
        ("maintainer", 200, 404),
        ("other", 403, 403),
        (None, 401, 401),
    ],
)
def test_source_permissions(client_for, world, who, mine, theirs):
    ops = [{"op": "add", "path": "/connectorAttributes/filterString", "value": 'title == "x"'}]
    client = client_for(who)
    assert patch(client, world["mine"], ops).status_code == mine
    assert patch(client, world["theirs"], ops).status_code == theirs
    assert client.get(f"/v3/sources/{world['theirs'].pk}").status_code == theirs
    world["theirs"].refresh_from_db()
    assert bool(world["theirs"].connector_attributes) == (theirs == 200)
    if who is not None and who != "other":
        assert patch(client, world["mine"], ops, prefix="").status_code == 200
        assert client.get("/v3/sources/abc").status_code == 404
        assert client.get("/v3/sources/99999999").status_code == 404


def test_rate_limited_429(client_for, settings, world):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"token": "1/min"}}
    ops = [{"op": "add", "path": "/connectorAttributes/filterString", "value": 'title == "x"'}]
    assert patch(client_for("owner"), world["mine"], ops).status_code == 200
    response = patch(client_for("owner"), world["mine"], ops)
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
