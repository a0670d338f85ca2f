"""Sync an integration now: ``manage.py sync <integration> [--full] [--wait]``."""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance.jobs import job_cancel
from governance.models import Job
from integrations.models import Integration
from integrations.sync import sync_start


class Command(BaseCommand):
    help = "Queue a sync of an integration (by name or id); --wait follows its progress."

    def add_arguments(self, parser):
        parser.add_argument("integration", help="Integration name or id")
        parser.add_argument("--full", action="store_true", help="Full sync (marks what vanished as removed)")
        parser.add_argument(
            "--wait", action="store_true", help="Follow the job with a progress bar until it ends"
        )

    def handle(self, *args, integration, full, wait, **options):
        found = Integration.objects.filter(name=integration).first()
        if found is None and integration.isdigit():
            found = Integration.objects.filter(pk=int(integration)).first()
        if found is None:
            raise CommandError(f"No integration named {integration!r}.")
        job = sync_start(actor=None, integration=found, full=True if full else None)
        if job.status == Job.Status.SKIPPED:
            self.stdout.write(job.log[-1]["message"])
            return
        self.stdout.write(f"Job {job.pk} queued for {found.name}.")
        if not wait:
            return
        bar = tqdm(desc=found.name, unit=" objects", file=self.stdout._out, dynamic_ncols=True)
        try:
            while True:
                job.refresh_from_db()
                bar.set_postfix_str(f"{job.status} · {job.phase}", refresh=False)
                bar.update(max(job.done - bar.n, 0))
                if job.is_finished:
                    break
                time.sleep(0.5)
        except KeyboardInterrupt:
            job_cancel(actor=None, job=job)
            raise CommandError("Interrupted: the sync was asked to stop.") from None
        finally:
            bar.close()
        message = job.log[-1]["message"] if job.log else job.status
        if job.status != Job.Status.SUCCEEDED:
            raise CommandError(job.error or message)
        self.stdout.write(self.style.SUCCESS(message))
