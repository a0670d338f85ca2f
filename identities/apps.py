from django.apps import AppConfig


class IdentitiesConfig(AppConfig):
    """People: the person of every portal user, the People list, a person's page and the people API, and
    identity sources (an integration's accounts create and update people after each of its syncs).

    Owns ``Person`` and ``IdentitySource``. May import ``integrations``, ``governance`` and ``connectors``, never ``access`` (a
    peer): what it shows of access requests comes through ``integrations.hooks``.
    """

    name = "identities"
    verbose_name = "People"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from governance import audit
        from integrations import hooks

        from .models import IdentitySource, Person

        audit.register(Person, exclude=("updated_at",))
        audit.register(IdentitySource, exclude=("last_applied_at", "last_summary"))
        hooks.after_sync.register(_after_sync)
        hooks.integration_links.register(_integration_links)
        post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="identities:person-of-user")


def _user_saved(sender, instance, created, raw=False, **kwargs):
    """Every user is a person: one made anywhere (the Django admin, the demo, a test) gets one at once."""
    if created and not raw:
        from .services import person_ensure

        person_ensure(user=instance)


def _after_sync(integration, result):
    """A sync of an identity source's integration applies the source, in the sync's transaction."""
    from .models import IdentitySource
    from .services import identity_source_apply

    source = IdentitySource.objects.filter(integration=integration, enabled=True).first()
    if source is not None:
        summary = identity_source_apply(source=source)
        result.add("people_created", summary.get("created", 0))
        result.add("people_updated", summary.get("updated", 0))


def _integration_links(integration, *, viewer):
    """An integration's page links to its identity source (or to making it one), for admins."""
    from django.urls import reverse

    from integrations.rights import is_admin

    from .models import IdentitySource

    if not is_admin(viewer):
        return []
    exists = IdentitySource.objects.filter(integration=integration).exists()
    url = reverse("identities:identity-source", kwargs={"integration_id": integration.pk})
    return [
        {"label": "Identity source" if exists else "Make an identity source", "url": url, "icon": "users"}
    ]
