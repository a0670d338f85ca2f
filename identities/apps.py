from django.apps import AppConfig


class IdentitiesConfig(AppConfig):
    """People: the person of every portal user, the People list, a person's page and the people API.

    Owns ``Person``. May import ``integrations``, ``governance`` and ``connectors``, never ``access`` (a
    peer): what it shows of access requests comes through ``integrations.hooks``.
    """

    name = "identities"
    verbose_name = "People"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        from governance import audit

        from .models import Person

        audit.register(Person, exclude=("updated_at",))
        post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="identities:person-of-user")


def _user_saved(sender, instance, created, raw=False, **kwargs):
    """Every user is a person: one made anywhere (the Django admin, the demo, a test) gets one at once."""
    if created and not raw:
        from .services import person_ensure

        person_ensure(user=instance)
