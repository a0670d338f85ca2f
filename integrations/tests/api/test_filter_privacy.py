"""Filters never reveal whether an object the caller may not see exists."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("path", "param", "hidden"),
    [
        ("/api/resources/", "integration", "theirs"),
        ("/api/roles/", "resource", "theirs_resource"),
        ("/api/permissions/", "account", "theirs_account"),
        ("/api/permissions/", "role", "theirs_role"),
    ],
)
def test_a_hidden_id_is_refused_like_a_missing_one(client_for, world, path, param, hidden):
    owner = client_for("owner")
    hidden_response = owner.get(path, {param: world[hidden].pk})
    missing_response = owner.get(path, {param: 10**9})
    assert hidden_response.status_code == missing_response.status_code == 400
    assert hidden_response.json()["error"]["code"] == missing_response.json()["error"]["code"]
    # The caller's own objects still filter.
    mine = {"theirs": "mine", "theirs_resource": "mine_resource"}.get(
        hidden, hidden.replace("theirs", "mine")
    )
    assert owner.get(path, {param: world[mine].pk}).status_code == 200
    # An admin sees and filters by everything.
    assert client_for("admin").get(path, {param: world[hidden].pk}).status_code == 200
