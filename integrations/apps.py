from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self) -> None:
        from governance import audit

        from . import models as m
        from . import tasks  # noqa: F401 (registers the tasks that services queue by name)

        audit.register(m.Integration, integration=lambda o: o.pk)
        for model in (m.Resource, m.Role, m.Account, m.Permission, m.PrerequisitePermission):
            audit.register(model, integration=lambda o: o.integration_id)
        audit.register(m.RoleImplication, integration=lambda o: o.role.integration_id)
        audit.register(m.Maintainer, integration=lambda o: o.integration_id_for_audit)
        for model in (m.Agent, m.ApprovalWorkflow, m.ApprovalRule, m.ApprovalStep, m.Approver, m.Tag, m.Rule):
            audit.register(model)
