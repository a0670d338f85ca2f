"""`manage.py demo`: a realistic organisation, loaded idempotently; the admin shows every model with it."""

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command
from django.http import HttpRequest
from django.urls import reverse

from governance.models import AuditEvent, User
from integrations.models import Account, Integration, Permission, Resource, Role

pytestmark = pytest.mark.django_db


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (User, Integration, Resource, Role, Account, Permission, AuditEvent)
    }


@pytest.fixture
def demo(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path  # the demo application keeps what the portal provisions under it
    settings.CONNECTOR_FILES_DIR = tmp_path / "connector-files"  # derived from VAR_DIR when settings load
    settings.DEBUG = True  # as scripts/demo.sh runs it: the admin gets the password "admin"
    call_command("demo", scale=0.5, verbosity=0)


def test_demo_loads_an_organisation(demo):
    admin_user = User.objects.get(username="admin")
    assert admin_user.is_superuser and admin_user.check_password("admin")
    assert Integration.objects.count() == 5
    assert Integration.objects.filter(last_sync_status="succeeded").count() == 5
    assert Resource.objects.count() > 50
    assert Role.objects.count() > Resource.objects.count()
    assert Permission.objects.filter(ended_at=None).count() > Account.objects.count()
    assert Resource.objects.exclude(owner=None).exists()
    assert Resource.objects.filter(tags__name="production").exists()
    assert User.objects.get(username="margaret").manager.username == "linus"
    # Settings from the organisation file.
    assert Integration.objects.get(name="Finance Suite").read_only is True
    assert Integration.objects.get(name="Cloud Platform").allowed_durations == ["1h", "3h", "12h", "1d", "1w"]
    # The connector attribute filtered marketing and legal projects out of Cloud Platform, and only those.
    cloud = Integration.objects.get(name="Cloud Platform")
    unfiltered, _ = cloud.connector.invoke(
        "std:entitlement:list", {**cloud.connection_config, **cloud.connection_secrets}
    )
    excluded = {
        o["identity"] for o in unfiltered if o["attributes"]["application"].startswith(("mkt-", "legal-"))
    }
    assert excluded
    synced = set(Role.objects.filter(integration=cloud).values_list("external_id", flat=True))
    assert synced == {o["identity"] for o in unfiltered} - excluded


def test_demo_is_idempotent(demo):
    before = _counts()
    call_command("demo", scale=0.5, verbosity=0)
    assert _counts() == before


def test_admin_shows_every_model_with_the_demo_data(demo, client):
    client.force_login(User.objects.get(username="admin"))
    for model in admin.site._registry:
        opts = model._meta
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.label
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            continue
        change = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        assert change.status_code == 200, opts.label
    search = client.get(reverse("admin:integrations_resource_changelist"), {"q": "prod"})
    assert search.status_code == 200 and search.context["cl"].result_count > 0


def test_a_demo_employee_requests_access_and_her_manager_approves(
    demo, client, django_capture_on_commit_callbacks
):
    from access.models import AccessRequest
    from access.selectors import requestable_roles
    from integrations.selectors import effective_settings

    assert client.login(request=HttpRequest(), username="dorothy", password="demo")
    home = client.get("/")
    assert home.status_code == 302 and home.url == "/request/"  # she owns nothing: she requests access
    role = requestable_roles().filter(integration__name="Corporate Directory").first()
    duration = effective_settings(role).allowed_durations[0]
    filed = client.post(f"/request/{role.pk}/", {"duration": duration, "justification": "on call"})
    access = AccessRequest.objects.get(role=role, beneficiary__username="dorothy")
    assert filed.status_code == 302 and access.status == "pending"

    assert client.login(
        request=HttpRequest(), username="annie", password="demo"
    )  # her manager: "Manager approval"
    assert f"/requests/{access.pk}/" in client.get("/approvals/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/requests/{access.pk}/approve", {"comment": "ok"})
    access.refresh_from_db()
    assert access.status == "granted", access.error
    assert Permission.objects.filter(
        role=role, access_requests=access, ended_at=None, source="portal"
    ).exists()


def test_demo_refuses_its_default_passwords_when_debug_is_off(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.DEBUG = False
    with pytest.raises(CommandError) as refused:
        call_command("demo", scale=0.02, verbosity=0)
    message = str(refused.value)
    assert "refusing" in message and "DEBUG is off" in message and "--password" in message
    assert not User.objects.exists()  # nothing half-loaded
    with pytest.raises(CommandError):
        call_command("demo", scale=0.02, verbosity=0, password="admin")  # explicitly: still the default
    with pytest.raises(CommandError) as refused:  # the people's default password is refused too
        call_command("demo", scale=0.02, verbosity=0, password="a-real-secret-9")
    assert "DEMO_PEOPLE_PASSWORD" in str(refused.value)
    call_command(
        "demo", scale=0.02, verbosity=0, password="a-real-secret-9", people_password="people-secret-9"
    )
    assert User.objects.get(username="admin").check_password("a-real-secret-9")
    assert User.objects.get(username="dorothy").check_password("people-secret-9")
