from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Just-in-time access"

    def ready(self) -> None:
        from governance import audit

        from . import (
            hooks,
            tasks,  # noqa: F401 (registers the tasks that services queue by name)
        )
        from . import models as m

        audit.register(m.AccessRequest, integration=lambda o: o.integration_id, exclude=("updated_at",))
        for model in (m.AccessDecision, m.AccessTicket, m.RequestPermission):
            audit.register(model, integration=lambda o: o.request.integration_id)
        hooks.connect()
