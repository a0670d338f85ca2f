"""Just-in-time access gets its own app: requests, decisions and tickets move here from ``integrations``.

Their tables keep their names (``integrations_accessrequest``…) and every row: the models move in
Django's state only. The link from a permission to the request it was granted for moves from the
inventory's ``integrations_permission.request_id`` to this app's ``access_requestpermission``, so the
inventory no longer points up at access; the audit log's content types of the three models move
with them (their ids, which the audit events refer to, are kept).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED = ("accessrequest", "accessdecision", "accessticket")

COPY_LINKS = """
INSERT INTO access_requestpermission (request_id, permission_id)
SELECT request_id, id FROM integrations_permission WHERE request_id IS NOT NULL
"""
# Backwards (integrations.0012 has put the column back by then).
COPY_LINKS_BACK = """
UPDATE integrations_permission SET request_id = (
    SELECT l.request_id FROM access_requestpermission l WHERE l.permission_id = integrations_permission.id
) WHERE id IN (SELECT permission_id FROM access_requestpermission)
"""


def _move_content_types(apps, source: str, target: str) -> None:
    """The content types of the moved models change app, keeping their ids (audit events refer to them).
    One the target app already has (created when a migrate finished meanwhile) gives way: what refers
    to it is pointed at the kept one first."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    AuditEvent = apps.get_model("governance", "AuditEvent")
    Permission = apps.get_model("auth", "Permission")
    for model in MOVED:
        kept = ContentType.objects.filter(app_label=source, model=model).first()
        if kept is None:
            continue
        spare = ContentType.objects.filter(app_label=target, model=model).first()
        if spare is not None:
            AuditEvent.objects.filter(object_type_id=spare.pk).update(object_type_id=kept.pk)
            Permission.objects.filter(content_type_id=spare.pk).delete()
            spare.delete()
        kept.app_label = target
        kept.save(update_fields=["app_label"])


def content_types_forward(apps, schema_editor):
    _move_content_types(apps, "integrations", "access")


def content_types_back(apps, schema_editor):
    _move_content_types(apps, "access", "integrations")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("integrations", "0011_integration_deletion_and_interval_bounds"),
        ("governance", "0007_api_tokens_expire"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='AccessRequest',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('duration', models.CharField(choices=[('30m', '30 minutes'), ('1h', '1 hour'), ('3h', '3 hours'), ('6h', '6 hours'), ('12h', '12 hours'), ('16h', '16 hours'), ('1d', '1 day'), ('3d', '3 days'), ('1w', '1 week'), ('1mo', '1 month'), ('3mo', '3 months'), ('6mo', '6 months'), ('1y', '1 year'), ('2y', '2 years'), ('unlimited', 'Unlimited')], max_length=10)),
                        ('justification', models.TextField()),
                        ('status', models.CharField(choices=[('pending', 'Waiting for approval'), ('approved', 'Approved, being granted'), ('failed', 'Grant failed, retrying'), ('granted', 'Granted'), ('denied', 'Denied'), ('cancelled', 'Cancelled'), ('revoked', 'Revoked'), ('expired', 'Expired'), ('extended', 'Extended by a later request')], db_index=True, default='pending', max_length=10)),
                        ('rule_position', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('steps', models.JSONField(blank=True, default=list)),
                        ('current_step', models.PositiveSmallIntegerField(default=0, help_text='Index into steps.')),
                        ('created_account', models.BooleanField(default=False, help_text='The account was created for this request.')),
                        ('error', models.TextField(blank=True, help_text='The last grant or revoke error.')),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('reminders_sent', models.JSONField(blank=True, default=list)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('decided_at', models.DateTimeField(blank=True, null=True)),
                        ('granted_at', models.DateTimeField(blank=True, null=True)),
                        ('expires_at', models.DateTimeField(blank=True, null=True)),
                        ('ended_at', models.DateTimeField(blank=True, null=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('account', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='access_requests', to='integrations.account')),
                        ('beneficiary', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='access_requests_for', to=settings.AUTH_USER_MODEL)),
                        ('integration', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='access_requests', to='integrations.integration')),
                        ('pending_approvers', models.ManyToManyField(blank=True, help_text='Who may decide the current step now.', related_name='approvals_waiting', to=settings.AUTH_USER_MODEL)),
                        ('prerequisite_roles', models.ManyToManyField(blank=True, help_text='Prerequisites the beneficiary lacked: granted first, ended with the request.', related_name='prerequisite_for_requests', to='integrations.role')),
                        ('requester', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='access_requests', to=settings.AUTH_USER_MODEL)),
                        ('revoked_by', models.ForeignKey(blank=True, help_text='Who ended the access before it expired.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('role', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='access_requests', to='integrations.role')),
                        ('workflow', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='requests', to='integrations.approvalworkflow')),
                    ],
                    options={
                        'db_table': 'integrations_accessrequest',
                        'ordering': ['-created_at', '-id'],
                    },
                ),
                migrations.CreateModel(
                    name='AccessDecision',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('step', models.PositiveSmallIntegerField(help_text="Index into the request's steps.")),
                        ('approved', models.BooleanField()),
                        ('automatic', models.BooleanField(default=False)),
                        ('comment', models.TextField(blank=True)),
                        ('decided_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('approver', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL)),
                        ('request', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='decisions', to='access.accessrequest')),
                    ],
                    options={
                        'db_table': 'integrations_accessdecision',
                        'ordering': ['decided_at', 'id'],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('approver__isnull', False)), fields=('request', 'step', 'approver'), name='uniq_decision_per_step')],
                    },
                ),
                migrations.CreateModel(
                    name='AccessTicket',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('grant', 'Grant access'), ('revoke', 'Revoke access')], max_length=6)),
                        ('status', models.CharField(choices=[('open', 'Open'), ('done', 'Done'), ('cancelled', 'Cancelled')], db_index=True, default='open', max_length=10)),
                        ('reason', models.CharField(max_length=300)),
                        ('note', models.TextField(blank=True)),
                        ('opened_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('closed_at', models.DateTimeField(blank=True, null=True)),
                        ('assignee', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='tickets', to=settings.AUTH_USER_MODEL)),
                        ('closed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                        ('request', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tickets', to='access.accessrequest')),
                    ],
                    options={
                        'db_table': 'integrations_accessticket',
                        'ordering': ['-opened_at', '-id'],
                        'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'open')), fields=('request', 'kind'), name='uniq_open_ticket')],
                    },
                ),
                migrations.AddIndex(
                    model_name='accessrequest',
                    index=models.Index(fields=['beneficiary', 'status'], name='integration_benefic_84b95b_idx'),
                ),
                migrations.AddIndex(
                    model_name='accessrequest',
                    index=models.Index(fields=['status', 'expires_at'], name='integration_status_576459_idx'),
                ),
            ],
        ),
        migrations.CreateModel(
            name='RequestPermission',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('permission', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='integrations.permission')),
                ('request', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='access.accessrequest')),
            ],
            options={
                'verbose_name': 'link of a permission to its request',
                'verbose_name_plural': 'links of permissions to their requests',
            },
        ),
        migrations.AddField(
            model_name='accessrequest',
            name='permissions',
            field=models.ManyToManyField(blank=True, help_text='The permissions written for the request (its role and prerequisites): ended with it.', related_name='access_requests', through='access.RequestPermission', to='integrations.permission'),
        ),
        migrations.RunSQL(COPY_LINKS, COPY_LINKS_BACK),
        migrations.RunPython(content_types_forward, content_types_back),
    ]
