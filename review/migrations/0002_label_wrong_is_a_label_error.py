"""Reviews saved with cause (2) "label wrong" but without the label-error flag get the flag, as
review_save now sets it: otherwise those samples would be missing from trainset_error.md."""
from django.db import migrations


def flag_label_wrong_reviews(apps, schema_editor):
    Review = apps.get_model("review", "Review")
    Review.objects.filter(cause="label_wrong", label_error=False).update(label_error=True)


class Migration(migrations.Migration):
    dependencies = [("review", "0001_initial")]

    operations = [migrations.RunPython(flag_label_wrong_reviews, migrations.RunPython.noop)]
