"""Sending work to the workers by task name, once the current transaction commits.

Services never import their tasks (the tasks, thin wrappers, import the services): they queue work
here by the task's name. Each app imports its ``tasks`` module when it is ready, so every task is
registered in the web process as in the worker. Without a broker the task runs in-process.
"""

from __future__ import annotations

import logging

from django.db import transaction

from .celery import app

log = logging.getLogger(__name__)


def task(name: str):
    """The registered Celery task called ``name``."""
    return app.tasks[name]


def send_on_commit(name: str, *args, queue: str | None = None) -> None:
    """Send ``name(*args)`` once the transaction commits. A broker that refuses the message is logged:
    use this for work that a periodic pass retries (a job's message goes through ``jobs.job_send``)."""

    def send() -> None:
        try:
            task(name).apply_async(args=list(args), queue=queue)
        except Exception:
            log.warning("could not queue %s%r; it is retried later", name, args, exc_info=True)

    transaction.on_commit(send)
