"""The Django project package and the platform under the domain.

Settings, URLs, the Celery app, the audit log, jobs, access control and the
generic building blocks the `integrations` domain plugs into.
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
