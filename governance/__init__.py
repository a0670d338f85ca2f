"""The Django project package and the platform under the domain apps.

Settings, URLs, the Celery app and queueing by task name, users and sign-in, API tokens and the API's
base classes, the audit log, jobs with progress and heartbeats, notifications, input bounds and
network guards: the generic building blocks the apps (``integrations``, ``access``…) plug into. It
imports none of them; ``settings.py`` and ``urls.py`` name them (``tests/test_layers.py`` checks it).
"""

from .celery import app as celery_app

__all__ = ["celery_app"]
