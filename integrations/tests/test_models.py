"""The inventory model: effective settings, constraints, encryption at rest, bad input."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from integrations import services
from integrations.durations import ALL_DURATIONS, expires_at, normalize_durations
from integrations.models import (
    ApprovalWorkflow,
    Integration,
    Maintainer,
    Permission,
    Resource,
    Role,
    RoleImplication,
)
from integrations.selectors import effective_settings, granting_role_ids, implied_role_ids

pytestmark = pytest.mark.django_db


# -- effective settings ---------------------------------------------------------------------------


def test_workflow_resolves_role_then_resource_then_integration(integration, resource, role):
    integration_wf = ApprovalWorkflow.objects.create(name="Integration default")
    resource_wf = ApprovalWorkflow.objects.create(name="Resource workflow")
    role_wf = ApprovalWorkflow.objects.create(name="Role workflow")

    assert effective_settings(role).workflow is None
    assert effective_settings(role).workflow_from == "default"

    integration.default_workflow = integration_wf
    integration.save()
    role.refresh_from_db()
    s = effective_settings(role)
    assert (s.workflow, s.workflow_from) == (integration_wf, "integration")

    resource.workflow = resource_wf
    resource.save()
    role.refresh_from_db()
    s = effective_settings(role)
    assert (s.workflow, s.workflow_from) == (resource_wf, "resource")
    assert effective_settings(resource).workflow == resource_wf

    role.workflow = role_wf
    role.save()
    s = effective_settings(role)
    assert (s.workflow, s.workflow_from) == (role_wf, "role")
    assert effective_settings(integration).workflow == integration_wf


def test_durations_honour_each_levels_override(integration, resource, role):
    s = effective_settings(role)
    assert s.allowed_durations == ALL_DURATIONS and s.durations_from == "default"

    services.integration_update(
        actor=None, integration=integration, override_allowed_durations=True, allowed_durations=["1w", "1h"]
    )
    role.refresh_from_db()
    s = effective_settings(role)
    assert s.allowed_durations == ["1h", "1w"] and s.durations_from == "integration"

    # A level that holds a list but does not override keeps inheriting.
    services.resource_update(actor=None, resource=resource, allowed_durations=["3d"])
    role.refresh_from_db()
    assert effective_settings(role).allowed_durations == ["1h", "1w"]

    services.resource_update(actor=None, resource=resource, override_allowed_durations=True)
    role.refresh_from_db()
    s = effective_settings(role)
    assert s.allowed_durations == ["3d"] and s.durations_from == "resource"

    services.role_update(actor=None, role=role, override_allowed_durations=True, allowed_durations=["30m"])
    s = effective_settings(role)
    assert s.allowed_durations == ["30m"] and s.durations_from == "role"


def test_requestable_needs_every_level(integration, resource, role):
    assert effective_settings(role).requestable is True
    role.requestable = False
    role.save()
    s = effective_settings(role)
    assert s.requestable is False and "role" in s.requestable_reason

    role.requestable = True
    role.save()
    integration.requestable = False
    integration.save()
    role.refresh_from_db()
    s = effective_settings(role)
    assert s.requestable is False and "integration" in s.requestable_reason

    integration.requestable = True
    integration.save()
    resource.removed_at = datetime(2026, 1, 1, tzinfo=UTC)
    resource.save()
    role.refresh_from_db()
    s = effective_settings(role)
    assert s.requestable is False and "removed" in s.requestable_reason


def test_owner_and_maintainers_inherit(integration, resource, role, django_user_model):
    alice = django_user_model.objects.create(username="alice")
    bob = django_user_model.objects.create(username="bob")
    team = Group.objects.create(name="DBAs")
    assert effective_settings(role).owner is None

    integration.owner = alice
    integration.save()
    role.refresh_from_db()
    s = effective_settings(role)
    assert (s.owner, s.owner_from) == (alice, "integration")

    resource.owner = bob
    resource.save()
    role.refresh_from_db()
    s = effective_settings(role)
    assert (s.owner, s.owner_from) == (bob, "resource")

    services.maintainer_add(actor=None, integration=integration, group=team)
    services.maintainer_add(actor=None, resource=resource, user=alice)
    other = Resource.objects.create(integration=integration, external_id="db-2", name="billing")
    services.maintainer_add(actor=None, resource=other, user=bob)
    principals = {(m.user or m.group) for m in effective_settings(role).maintainers}
    assert principals == {team, alice}


def test_implied_roles_follow_chains(resource):
    a = Role.objects.create(resource=resource, external_id="a", name="admin")
    b = Role.objects.create(resource=resource, external_id="b", name="write")
    c = Role.objects.create(resource=resource, external_id="c", name="read")
    services.role_set_implied_roles(actor=None, role=a, implied=[b])
    services.role_set_implied_roles(actor=None, role=b, implied=[c])
    assert implied_role_ids(a.pk) == {b.pk, c.pk}
    assert granting_role_ids(c.pk) == {a.pk, b.pk}


# -- bad input -----------------------------------------------------------------------------------


def test_implied_role_cycle_is_refused_and_nothing_saved(resource):
    a = Role.objects.create(resource=resource, external_id="a", name="admin")
    b = Role.objects.create(resource=resource, external_id="b", name="write")
    c = Role.objects.create(resource=resource, external_id="c", name="read")
    services.role_set_implied_roles(actor=None, role=a, implied=[b])
    services.role_set_implied_roles(actor=None, role=b, implied=[c])
    with pytest.raises(ValidationError) as exc:
        services.role_set_implied_roles(actor=None, role=c, implied=[a])
    assert "cycle" in str(exc.value.message_dict["implies"])
    assert (
        "orders · read ⇒ orders · admin ⇒ orders · write ⇒ orders · read"
        in exc.value.message_dict["implies"][0]
    )
    assert not RoleImplication.objects.filter(role=c).exists()

    # The model form path (admin inline) refuses it too.
    with pytest.raises(ValidationError) as exc:
        RoleImplication(role=c, implied_role=a).full_clean()
    assert "implied_role" in exc.value.message_dict


def test_duplicate_integration_name_is_refused(make_integration):
    make_integration(name="Production DB")
    with pytest.raises(ValidationError) as exc:
        make_integration(name="Production DB")
    assert "name" in exc.value.message_dict
    assert Integration.objects.filter(name="Production DB").count() == 1


def test_unknown_application_is_refused(make_integration):
    with pytest.raises(ValidationError) as exc:
        make_integration(application="no-such-app")
    assert "application" in exc.value.message_dict
    assert "demo" in exc.value.message_dict["application"][0]  # lists the installed ones
    assert not Integration.objects.exists()


@pytest.mark.parametrize("config", [["a", "list"], "a string", 42])
def test_connection_config_must_be_an_object(make_integration, config):
    with pytest.raises(ValidationError) as exc:
        make_integration(connection_config=config)
    assert "connection_config" in exc.value.message_dict
    assert not Integration.objects.exists()


def test_connection_config_missing_required_item_names_it(make_integration):
    with pytest.raises(ValidationError) as exc:
        make_integration(connection_config={"apiToken": "demo", "users": 10})
    assert "url" in " ".join(exc.value.message_dict["connection_config"])
    assert not Integration.objects.exists()


def test_malformed_filter_is_refused_with_position(make_integration):
    with pytest.raises(ValidationError) as exc:
        make_integration(connector_attributes={"group.filterString": 'environment == "prod" &&'})
    message = " ".join(exc.value.message_dict["connector_attributes"])
    assert "group.filterString" in message and "position" in message
    assert not Integration.objects.exists()


def test_filter_naming_unknown_attribute_is_refused(make_integration):
    with pytest.raises(ValidationError) as exc:
        make_integration(connector_attributes={"account.filterString": 'departmnet == "Sales"'})
    assert "departmnet" in " ".join(exc.value.message_dict["connector_attributes"])


def test_unknown_connector_attribute_is_refused(make_integration):
    with pytest.raises(ValidationError) as exc:
        make_integration(connector_attributes={"filterStrng": "x == 1"})
    assert "filterStrng" in " ".join(exc.value.message_dict["connector_attributes"])


def test_unknown_duration_is_refused(make_integration):
    with pytest.raises(ValidationError) as exc:
        make_integration(override_allowed_durations=True, allowed_durations=["1h", "2 weeks"])
    assert "2 weeks" in " ".join(exc.value.message_dict["allowed_durations"])


# -- constraints ----------------------------------------------------------------------------------


def test_external_ids_are_unique_per_integration(make_integration):
    first, second = make_integration(), make_integration()
    Resource.objects.create(integration=first, external_id="g1", name="g1")
    Resource.objects.create(integration=second, external_id="g1", name="g1")  # another integration: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        Resource.objects.create(integration=first, external_id="g1", name="again")


def test_one_active_permission_per_account_and_role(integration, role):
    account = integration.accounts.create(external_id="u1", identity="u1")
    first = Permission.objects.create(account=account, role=role)
    with pytest.raises(IntegrityError), transaction.atomic():
        Permission.objects.create(account=account, role=role)
    first.ended_at = first.granted_at
    first.save()
    Permission.objects.create(account=account, role=role)  # history kept, a new grant allowed
    assert Permission.objects.filter(account=account, role=role).count() == 2


def test_maintainer_is_exactly_one_principal_on_one_scope(integration, resource, django_user_model):
    user = django_user_model.objects.create(username="carol")
    with pytest.raises(ValidationError):
        services.maintainer_add(actor=None, integration=integration, resource=resource, user=user)
    with pytest.raises(ValidationError):
        services.maintainer_add(actor=None, integration=integration)
    services.maintainer_add(actor=None, integration=integration, user=user)
    with pytest.raises(ValidationError):
        services.maintainer_add(actor=None, integration=integration, user=user)
    assert Maintainer.objects.count() == 1


# -- secrets --------------------------------------------------------------------------------------


def _raw_row(integration):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT connection_config, connection_secrets FROM integrations_integration WHERE id = %s",
            [integration.pk],
        )
        return cursor.fetchone()


def test_secrets_are_encrypted_at_rest(make_integration):
    integration = make_integration(
        connection_config={
            "url": "https://d.example.com",
            "connectionOption": "password",
            "username": "svc",
            "password": "pa55-w0rd-visible?",
            "users": 5,
        }
    )
    raw_config, raw_secrets = _raw_row(integration)
    assert "pa55-w0rd-visible?" not in str(raw_config)
    assert "pa55-w0rd-visible?" not in str(raw_secrets)
    assert "password" not in str(raw_secrets)  # not even the item names
    fresh = Integration.objects.get(pk=integration.pk)
    assert fresh.connection_secrets == {"password": "pa55-w0rd-visible?"}
    assert "password" not in fresh.connection_config and fresh.connection_config["username"] == "svc"


def test_empty_secret_keeps_the_stored_value(make_integration):
    integration = make_integration(
        connection_config={
            "url": "https://d.example.com",
            "connectionOption": "token",
            "apiToken": "t-1",
            "users": 5,
        }
    )
    services.integration_set_connection(
        actor=None,
        integration=integration,
        config={"url": "https://d.example.com", "connectionOption": "token", "apiToken": "", "users": 6},
    )
    fresh = Integration.objects.get(pk=integration.pk)
    assert fresh.connection_secrets == {"apiToken": "t-1"}
    assert fresh.connection_config["users"] == 6


# -- durations ------------------------------------------------------------------------------------


def test_durations_are_entitles_list_in_order():
    assert ALL_DURATIONS == [
        "30m", "1h", "3h", "6h", "12h", "16h", "1d", "3d", "1w", "1mo", "3mo", "6mo", "1y", "2y", "unlimited",
    ]  # fmt: skip
    assert normalize_durations(["1y", "30m", "1y"]) == ["30m", "1y"]


def test_expiry_of_months_clamps_to_month_end():
    start = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    assert expires_at(start, "1mo") == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)
    assert expires_at(start, "1y") == datetime(2027, 1, 31, 9, 0, tzinfo=UTC)
    assert expires_at(start, "16h") == datetime(2026, 2, 1, 1, 0, tzinfo=UTC)
    assert expires_at(start, "unlimited") is None


def test_encryption_key_rotation(make_integration, settings):
    from cryptography.fernet import Fernet
    from django.core.management import call_command

    integration = make_integration(connection_config={**DEMO_CONFIG_WITH_TOKEN})
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    call_command("rotate_encryption_key", verbosity=0)
    _, raw = _raw_row(integration)
    assert Fernet(new_key).decrypt(raw.encode())  # now under the new key
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key can go
    assert Integration.objects.get(pk=integration.pk).connection_secrets == {"apiToken": "rot-token"}
    settings.FIELD_ENCRYPTION_KEYS = old_keys  # and without the new key nothing decrypts
    with pytest.raises(Exception, match="cannot be decrypted"):
        Integration.objects.get(pk=integration.pk)


DEMO_CONFIG_WITH_TOKEN = {
    "url": "https://demo.example.com",
    "connectionOption": "token",
    "apiToken": "rot-token",
    "users": 5,
}


def test_test_connection_reports_the_connectors_reason(make_integration, admin_user):
    from governance.models import AuditEvent

    integration = make_integration()
    assert services.integration_test_connection(actor=admin_user, integration=integration) == (
        True,
        "Connection succeeded.",
    )
    integration.connection_secrets = {"apiToken": "wrong"}
    ok, message = services.integration_test_connection(actor=admin_user, integration=integration)
    assert not ok and "token" in message.lower()
    event = AuditEvent.objects.filter(action="integration.test_connection").latest("id")
    assert event.status == "error" and event.details["message"] == message
