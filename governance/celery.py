"""The Celery application.

With ``CELERY_BROKER_URL`` unset (the embedded default) tasks run in-process:
the same code paths, no broker to start.
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings")

app = Celery("governance")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def load_connectors(**kwargs) -> None:
    """Import every installed connector once, in the worker's main process: its pool processes
    inherit them, so no sync pays for the imports (the AWS SDK alone takes about half a second)."""
    from connectors import registry

    registry.discover()
