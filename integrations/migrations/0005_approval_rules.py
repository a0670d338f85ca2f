"""Approval workflows get rules: each workflow's existing steps move under one catch-all rule."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def steps_under_catch_all_rules(apps, schema_editor):
    ApprovalWorkflow = apps.get_model("integrations", "ApprovalWorkflow")
    ApprovalRule = apps.get_model("integrations", "ApprovalRule")
    ApprovalStep = apps.get_model("integrations", "ApprovalStep")
    for workflow in ApprovalWorkflow.objects.all():
        rule = ApprovalRule.objects.create(workflow=workflow, position=1)
        ApprovalStep.objects.filter(workflow=workflow).update(rule=rule)


def steps_back_on_workflows(apps, schema_editor):
    # The steps keep their workflow; only the rules go (the first rule's steps stay unique per position).
    ApprovalStep = apps.get_model("integrations", "ApprovalStep")
    ApprovalStep.objects.exclude(rule__position=1).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("integrations", "0004_permission_indexes"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApprovalRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveSmallIntegerField(default=1)),
                (
                    "max_duration",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("30m", "30 minutes"),
                            ("1h", "1 hour"),
                            ("3h", "3 hours"),
                            ("6h", "6 hours"),
                            ("12h", "12 hours"),
                            ("16h", "16 hours"),
                            ("1d", "1 day"),
                            ("3d", "3 days"),
                            ("1w", "1 week"),
                            ("1mo", "1 month"),
                            ("3mo", "3 months"),
                            ("6mo", "6 months"),
                            ("1y", "1 year"),
                            ("2y", "2 years"),
                            ("unlimited", "Unlimited"),
                        ],
                        help_text="Matches requests for at most this duration; empty: any duration.",
                        max_length=10,
                    ),
                ),
                (
                    "requester_groups",
                    models.ManyToManyField(
                        blank=True,
                        help_text="Matches requesters in any of these groups; none: every requester.",
                        related_name="approval_rules",
                        to="auth.group",
                    ),
                ),
                (
                    "workflow",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="rules",
                        to="integrations.approvalworkflow",
                    ),
                ),
            ],
            options={
                "ordering": ["workflow", "position"],
                "constraints": [
                    models.UniqueConstraint(fields=("workflow", "position"), name="uniq_rule_position")
                ],
            },
        ),
        migrations.AddField(
            model_name="approvalstep",
            name="rule",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="steps",
                to="integrations.approvalrule",
            ),
        ),
        migrations.RemoveConstraint(model_name="approvalstep", name="uniq_step_position"),
        migrations.RunPython(steps_under_catch_all_rules, steps_back_on_workflows),
    ]
