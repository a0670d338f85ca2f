"""Jobs: long-running work (syncs, bulk actions, deletions) with live progress, cancellation and a log.

A job's progress is written while it runs, even when the work itself happens inside one
long database transaction: on PostgreSQL, progress goes through the ``jobs`` connection
(a second connection to the same database), so screens and ``manage.py sync --wait`` see
it at once. On the embedded SQLite default there is one writer; progress is then kept in
memory and written when the job ends.

A job never stays running or queued without a live worker:

- the process running a job writes a **heartbeat** every few seconds from a thread of its own,
  through the progress connection (on SQLite, whose one writer may be the job's own transaction,
  into a file under ``VAR_DIR/jobs/``); a running job whose heartbeat is older than
  ``JOB_HEARTBEAT_LIMIT`` has lost its worker and is failed by :func:`jobs_fail_lost`, which the
  tick runs and every start of a job of the same kind and integration runs first;
- a job's message is sent only once the job is committed (:func:`job_send`), and a failed send
  fails the job with the reason; a queued job never marked as sent within the limit is failed too,
  and so is a sent one no worker started within ``JOB_QUEUED_LIMIT`` (its message lost);
- cancelling a job whose worker is gone (no heartbeat for three beats) cancels it at once.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import audit
from .models import Job
from .queue import task as queue_task

log = logging.getLogger(__name__)

PROGRESS_EVERY = 2.0  # seconds between progress writes
LOG_LIMIT = 200  # log lines kept per job
ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)


def heartbeat_limit() -> float:
    """Seconds without a heartbeat after which a running job's worker counts as lost."""
    return float(getattr(settings, "JOB_HEARTBEAT_LIMIT", 120.0))


def queued_limit() -> float:
    """Seconds a sent job may wait for a worker before its message counts as lost."""
    return float(getattr(settings, "JOB_QUEUED_LIMIT", 3600.0))


def heartbeat_every() -> float:
    """Seconds between two heartbeats: a few beats fit in the limit."""
    return max(0.2, min(15.0, heartbeat_limit() / 8))


def _beat_file(job_id) -> Path:
    return Path(settings.VAR_DIR) / "jobs" / f"{job_id}.beat"


def last_heartbeat(job: Job):
    """The job's last sign of life: its heartbeat (on SQLite, also its heartbeat file), else its start."""
    beat = job.heartbeat_at or job.started_at or job.created_at
    if progress_alias() is None:
        try:
            mtime = _beat_file(job.pk).stat().st_mtime
        except OSError:
            return beat
        beat = max(beat, datetime.fromtimestamp(mtime, tz=UTC))
    return beat


def has_live_worker(job: Job, *, within: float | None = None) -> bool:
    """Whether a worker still beats for this running job (within ``within`` seconds; default the limit)."""
    within = heartbeat_limit() if within is None else within
    return last_heartbeat(job) >= timezone.now() - timedelta(seconds=within)


def jobs_fail_lost(*, kind: str | None = None, integration_id: int | None = None) -> int:
    """Fail the running jobs whose worker is lost and the queued jobs never sent; returns how many.

    Each is failed with a conditional update, so a worker that beats again meanwhile keeps its job,
    and its ``cancel_requested`` is set, so a worker that comes back stops at its next check."""
    limit = heartbeat_limit()
    now = timezone.now()
    cutoff = now - timedelta(seconds=limit)
    jobs = Job.objects.all()
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    if integration_id is not None:
        jobs = jobs.filter(integration_id=integration_id)
    waited = now - timedelta(seconds=queued_limit())
    candidates = jobs.alias(beat=Coalesce("heartbeat_at", "started_at", "created_at")).filter(
        Q(status=Job.Status.RUNNING, beat__lt=cutoff)
        | Q(status=Job.Status.QUEUED, task_id="", created_at__lt=cutoff)
        | Q(status=Job.Status.QUEUED, created_at__lt=waited)
    )
    failed = 0
    for job in candidates:
        if job.status == Job.Status.RUNNING:
            beat = last_heartbeat(job)
            if beat >= cutoff:  # SQLite: the heartbeat file is newer than the row
                continue
            error = (
                f"Worker lost: no heartbeat since {beat:%Y-%m-%d %H:%M:%S} UTC "
                f"(the limit is {limit:g} s). The job was failed so that the next one can run."
            )
        elif not job.task_id:
            error = (
                f"Never sent to a worker: still unsent {limit:g} s after it was queued. "
                "The job was failed so that the next one can run."
            )
        else:
            error = (
                f"No worker started it within {queued_limit():g} s of being queued: the broker may have lost "
                "its message (restarted without persistence) or every worker was busy. The job was failed "
                "so that the next one can run; its message, if it still comes, finds it finished."
            )
        updated = Job.objects.filter(
            pk=job.pk, status=job.status, heartbeat_at=job.heartbeat_at, task_id=job.task_id
        ).update(
            status=Job.Status.FAILED,
            error=error,
            finished_at=now,
            cancel_requested=True,
            log=[*job.log[-(LOG_LIMIT - 1) :], _line("error", error)],
        )
        if not updated:
            continue
        _beat_file(job.pk).unlink(missing_ok=True)
        failed += 1
        log.warning("job %s (%s) failed: %s", job.pk, job.kind, error)
        audit.record(
            "job.lost",
            obj=job,
            integration_id=job.integration_id,
            status="error",
            details={"kind": job.kind, "error": error},
        )
    return failed


def progress_alias() -> str | None:
    """The connection that writes progress while the work's transaction is open (None: at the end)."""
    return "jobs" if "jobs" in connections.settings and connections["jobs"].vendor == "postgresql" else None


def _create_queued(fields: dict[str, Any]) -> Job | None:
    """A new queued job, or None when one of its kind is already active for its integration."""
    try:
        with transaction.atomic():
            return Job.objects.create(status=Job.Status.QUEUED, **fields)
    except IntegrityError:
        return None


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
    job = _create_queued(fields)
    if job is None and integration_id is not None:
        with audit.audit_context(actor=actor):
            if jobs_fail_lost(kind=kind, integration_id=integration_id):  # a dead job blocks no one
                job = _create_queued(fields)
    if job is None:
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


def job_send(job: Job, task_name: str, *, queue: str | None = None) -> None:
    """Send the task named ``task_name`` the job's id once the job is committed (the job exists before
    its message), and record that it was sent; when sending fails, fail the job with the reason (no
    job waits for a message that never left). Without a broker the task runs here, in-process."""
    task = queue_task(task_name)
    eager = bool(task.app.conf.task_always_eager)

    def send() -> None:
        try:
            result = task.apply_async(args=[str(job.pk)], queue=queue)
        except Exception as exc:
            if eager:  # the job itself raised: it recorded its own failure, or is failed here
                log.exception("job %s (%s) raised", job.pk, job.kind)
                error = f"The job stopped with an error: {type(exc).__name__}: {exc}"
            else:
                log.exception("could not send job %s (%s) to the broker", job.pk, job.kind)
                error = (
                    f"Could not send the job to the workers: the message broker did not take it "
                    f"({type(exc).__name__}: {exc}). Nothing ran; start it again once the broker is back."
                )
            Job.objects.filter(pk=job.pk, status__in=ACTIVE).update(
                status=Job.Status.FAILED,
                error=error,
                finished_at=timezone.now(),
                log=[*job.log, _line("error", error)],
            )
            return
        Job.objects.filter(pk=job.pk).update(task_id=result.id or "sent")

    transaction.on_commit(send)


def job_cancel(*, actor, job: Job) -> Job:
    """Ask a job to stop. A queued job, or a running one whose worker is gone (no heartbeat for three
    beats), is cancelled at once; a running one with a live worker stops at its next check."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.is_finished:
            return job
        job.cancel_requested = True
        orphan = job.status == Job.Status.RUNNING and not has_live_worker(job, within=3 * heartbeat_every())
        if job.status == Job.Status.QUEUED or orphan:
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            message = "Cancelled: its worker was gone." if orphan else "Cancelled before it started."
            job.log = [*job.log, _line("info", message)]
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
        self._stop_beating: threading.Event | None = None
        self._beating: threading.Thread | None = None

    def __enter__(self) -> JobRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Whatever happens, the heartbeat stops; a job left unfinished by an error is failed."""
        if exc is not None and not self.job.is_finished:
            self.finish(Job.Status.FAILED, error=f"{type(exc).__name__}: {exc}")
        self._stop_heartbeat()

    # The heartbeat -------------------------------------------------------------------------------
    def _beat(self) -> None:
        if self.alias is None:
            path = _beat_file(self.job.pk)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        else:
            Job.objects.using(self.alias).filter(pk=self.job.pk, status=Job.Status.RUNNING).update(
                heartbeat_at=timezone.now()
            )

    def _heartbeat(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(heartbeat_every()):
                try:
                    self._beat()
                except Exception:  # a missed beat is not fatal: the limit allows several
                    log.warning("job %s: could not write its heartbeat", self.job.pk, exc_info=True)
        finally:
            connections.close_all()  # this thread's own connections

    def _start_heartbeat(self) -> None:
        self._stop_heartbeat()
        self._stop_beating = threading.Event()
        self._beating = threading.Thread(
            target=self._heartbeat,
            args=(self._stop_beating,),
            name=f"job {self.job.pk} heartbeat",
            daemon=True,
        )
        self._beating.start()

    def _stop_heartbeat(self) -> None:
        if self._stop_beating is not None:
            self._stop_beating.set()
            self._stop_beating = None
            self._beating.join(heartbeat_every() + 5)  # a beat under way ends before the file goes
            _beat_file(self.job.pk).unlink(missing_ok=True)

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
        now = timezone.now()
        fields = {
            "status": Job.Status.RUNNING,
            "phase": phase,
            "started_at": now,
            "heartbeat_at": now,
            "log": self.job.log,
        }
        for key, value in fields.items():
            setattr(self.job, key, value)
        # The start is committed at once on every database: the job is visibly running.
        Job.objects.using(self.alias or "default").filter(pk=self.job.pk).update(**fields)
        self._start_heartbeat()

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
        self._stop_heartbeat()
        # A job failed as lost or cancelled as orphaned meanwhile keeps that end: its worker was given up on.
        Job.objects.using(self.alias or "default").filter(pk=self.job.pk, status__in=ACTIVE).update(**fields)
        return self.job
