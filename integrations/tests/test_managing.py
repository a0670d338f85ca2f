"""Who manages what: admins everything, owners and maintainers theirs, others nothing."""

import pytest
from django.contrib.auth.models import AnonymousUser, Group

from integrations import services
from integrations.models import Resource, Role
from integrations.rights import can_manage, manageable_integrations, manageable_resources, manageable_roles

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(django_user_model):
    make = django_user_model.objects.create
    return {
        "admin": make(username="root", is_staff=True),
        "owner": make(username="owner"),
        "maint": make(username="maint"),
        "member": make(username="member"),
        "res_owner": make(username="res_owner"),
        "nobody": make(username="nobody"),
    }


def test_manageable_by_role(people, make_integration):
    mine = make_integration(name="Mine", owner=people["owner"])
    other = make_integration(name="Other")
    team = Group.objects.create(name="ops")
    people["member"].groups.add(team)
    services.maintainer_add(actor=None, integration=mine, user=people["maint"])
    services.maintainer_add(actor=None, integration=mine, group=team)
    r_mine = Resource.objects.create(integration=mine, external_id="a", name="a")
    r_other = Resource.objects.create(integration=other, external_id="b", name="b", owner=people["res_owner"])
    role_other = Role.objects.create(resource=r_other, external_id="b-m", name="member")

    assert set(manageable_integrations(people["admin"])) == {mine, other}
    for who in ("owner", "maint", "member"):
        assert list(manageable_integrations(people[who])) == [mine], who
        assert list(manageable_resources(people[who])) == [r_mine], who
    # A resource owner manages that resource and its roles, not its integration.
    assert list(manageable_integrations(people["res_owner"])) == []
    assert list(manageable_resources(people["res_owner"])) == [r_other]
    assert list(manageable_roles(people["res_owner"])) == [role_other]
    assert can_manage(people["res_owner"], role_other) and not can_manage(people["res_owner"], other)
    for who in (people["nobody"], AnonymousUser()):
        assert not manageable_integrations(who).exists()
        assert not can_manage(who, mine)
    # No duplicates when a user qualifies several ways.
    services.maintainer_add(actor=None, integration=mine, user=people["owner"])
    assert manageable_integrations(people["owner"]).count() == 1
