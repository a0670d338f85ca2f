from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"
    verbose_name = "Governance platform"

    def ready(self) -> None:
        from celery import signals
        from django.contrib.auth.models import Group

        from . import audit
        from .models import ApiToken, User

        audit.register(User, exclude={"password", "last_login"})
        audit.register(Group)
        audit.register(ApiToken, exclude={"token_hash", "last_used_at"})

        # A task runs in an audit context named after its task id.
        def _open(task_id=None, task=None, **kwargs):
            task._audit_cm = audit.audit_context(correlation_id=task_id)
            task._audit_cm.__enter__()

        def _close(task=None, **kwargs):
            cm = getattr(task, "_audit_cm", None)
            if cm is not None:
                cm.__exit__(None, None, None)
                task._audit_cm = None

        signals.task_prerun.connect(_open, weak=False, dispatch_uid="audit-task-open")
        signals.task_postrun.connect(_close, weak=False, dispatch_uid="audit-task-close")
