"""Each scheduler process records how far its host clock is from the database's."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('scheduler', '0005_lease_model_name'),
    ]

    operations = [
        migrations.AddField(
            model_name='schedulerinstance',
            name='clock_offset',
            field=models.FloatField(blank=True, help_text="Seconds the database's clock is ahead of this process's host clock.", null=True),
        ),
    ]
