"""Jobs: long-running work (syncs, bulk actions) with live progress, cancellation and a log.

A job's progress is written while it runs, even when the work itself happens inside one
long database transaction: on PostgreSQL, progress goes through the ``jobs`` connection
(a second connection to the same database), so screens and ``manage.py sync --wait`` see
it at once. On the embedded SQLite default there is one writer; progress is then kept in
memory and written when the job ends.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.utils import timezone

from . import audit
from .models import Job

PROGRESS_EVERY = 2.0  # seconds between progress writes
LOG_LIMIT = 200  # log lines kept per job


def progress_alias() -> str | None:
    """The connection that writes progress while the work's transaction is open (None: at the end)."""
    return "jobs" if "jobs" in connections.settings and connections["jobs"].vendor == "postgresql" else None


def job_start(
    *, actor, kind: str, integration_id: int | None = None, subject=None, params: dict | None = None
) -> Job:
    """Queue a job. If one of this kind is already queued or running for the integration, the
    returned job is recorded as ``skipped`` (naming the running one) instead: the database
    enforces one active job per kind and integration."""
    from django.contrib.contenttypes.models import ContentType

    fields: dict[str, Any] = {
        "kind": kind,
        "integration_id": integration_id,
        "params": params or {},
        "created_by": actor if getattr(actor, "is_authenticated", False) else None,
    }
    if subject is not None:
        fields["subject_type"] = ContentType.objects.get_for_model(subject)
        fields["subject_id"] = str(subject.pk)
    try:
        with transaction.atomic():
            job = Job.objects.create(status=Job.Status.QUEUED, **fields)
    except IntegrityError:
        active = Job.objects.filter(
            kind=kind, integration_id=integration_id, status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
        ).first()
        now = timezone.now()
        job = Job.objects.create(
            status=Job.Status.SKIPPED,
            started_at=now,
            finished_at=now,
            log=[
                _line(
                    "info",
                    f"Skipped: {kind} job {active.pk if active else ''} is already {active.status if active else 'active'}.",
                )
            ],
            **fields,
        )
    with audit.audit_context(actor=actor):
        audit.record(
            f"job.{job.status}",
            obj=job,
            integration_id=integration_id,
            details={"kind": kind, **(params or {})},
        )
    return job


def job_cancel(*, actor, job: Job) -> Job:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops at its next check."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        if job.status == Job.Status.QUEUED:
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            job.log = [*job.log, _line("info", "Cancelled before it started.")]
        job.save(update_fields=["cancel_requested", "status", "finished_at", "log"])
    with audit.audit_context(actor=actor):
        audit.record("job.cancel", obj=job, integration_id=job.integration_id, details={"kind": job.kind})
    return job


def _line(level: str, message: str) -> dict[str, str]:
    return {"at": timezone.now().isoformat(timespec="seconds"), "level": level, "message": message}


class JobRun:
    """The running side of a job: progress, log lines, cancellation checks, the end."""

    def __init__(self, job: Job):
        self.job = job
        self.alias = progress_alias()
        self._last_write = 0.0
        self._last_cancel_check = 0.0
        self._cancelled = False

    def _write(self, **fields) -> None:
        for key, value in fields.items():
            setattr(self.job, key, value)
        if self.alias is None:
            return
        Job.objects.using(self.alias).filter(pk=self.job.pk).update(**fields)

    def start(self, phase: str = "") -> None:
        restarted = self.job.status == Job.Status.RUNNING
        self.job.log = [
            *self.job.log,
            _line("info", "Restarted after an interrupted run." if restarted else "Started."),
        ]
        fields = {
            "status": Job.Status.RUNNING,
            "phase": phase,
            "started_at": timezone.now(),
            "log": self.job.log,
        }
        for key, value in fields.items():
            setattr(self.job, key, value)
        # The start is committed at once on every database: the job is visibly running.
        Job.objects.using(self.alias or "default").filter(pk=self.job.pk).update(**fields)

    def log(self, message: str, level: str = "info") -> None:
        self.job.log = [*self.job.log[-(LOG_LIMIT - 1) :], _line(level, message)]
        self._write(log=self.job.log)

    def progress(self, *, counts: dict | None = None, done: int | None = None, total: int | None = None,
                 phase: str | None = None, force: bool = False) -> None:  # fmt: skip
        if counts is not None:
            self.job.counts = dict(counts)
        if done is not None:
            self.job.done = done
        if total is not None:
            self.job.total = total
        if phase is not None and phase != self.job.phase:
            self.job.phase = phase
            force = True
        now = time.monotonic()
        if force or now - self._last_write >= PROGRESS_EVERY:
            self._last_write = now
            self._write(
                counts=self.job.counts, done=self.job.done, total=self.job.total, phase=self.job.phase
            )

    def should_cancel(self) -> bool:
        """True once someone asked the job to stop (read at most once a second)."""
        if self._cancelled:
            return True
        now = time.monotonic()
        if now - self._last_cancel_check < 1.0:
            return False
        self._last_cancel_check = now
        self._cancelled = (
            Job.objects.using(self.alias or "default").filter(pk=self.job.pk, cancel_requested=True).exists()
        )
        return self._cancelled

    def finish(self, status: str, *, error: str = "", message: str = "") -> Job:
        self.job.log = [
            *self.job.log[-(LOG_LIMIT - 1) :],
            _line("error" if error else "info", message or status.capitalize() + "."),
        ]
        fields = {
            "status": status,
            "error": error,
            "finished_at": timezone.now(),
            "counts": self.job.counts,
            "done": self.job.done,
            "total": self.job.total,
            "phase": self.job.phase,
            "log": self.job.log,
        }
        for key, value in fields.items():
            setattr(self.job, key, value)
        Job.objects.using(self.alias or "default").filter(pk=self.job.pk).update(**fields)
        return self.job
