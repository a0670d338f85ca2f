import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0005_approval_rules")]

    operations = [
        migrations.AlterField(
            model_name="approvalstep",
            name="rule",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="steps",
                to="integrations.approvalrule",
            ),
        ),
        migrations.AlterModelOptions(
            name="approvalstep", options={"ordering": ["workflow", "rule__position", "position"]}
        ),
        migrations.AddConstraint(
            model_name="approvalstep",
            constraint=models.UniqueConstraint(fields=("rule", "position"), name="uniq_rule_step_position"),
        ),
    ]
