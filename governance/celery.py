"""The Celery application.

With ``CELERY_BROKER_URL`` unset (the embedded default) tasks run in-process:
the same code paths, no broker to start.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")

app = Celery("governance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
