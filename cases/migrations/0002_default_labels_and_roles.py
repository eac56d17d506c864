"""Data: the TOAST etiology label set (as data, editable) and the platform's roles (groups)."""

from django.db import migrations

ROLES = ["neurologist", "reviewer", "data_manager", "clinician"]

# Colours follow the research group's convention: atherothrombotic red, cardioembolic blue,
# cryptogenic green. Voxel values are stable: the model's output channels map onto them.
DEFAULT_LABELS = [
    (1, "atherothrombotic", "#e53935", "Atherothrombotic", "Атеротромботический",
     "Large-artery atherosclerosis (TOAST 1)."),
    (2, "cardioembolic", "#1e88e5", "Cardioembolic", "Кардиоэмболический",
     "Cardioembolism (TOAST 2)."),
    (3, "cryptogenic", "#43a047", "Cryptogenic", "Криптогенный",
     "Stroke of undetermined etiology (TOAST 5)."),
    (4, "lacunar", "#fdd835", "Lacunar", "Лакунарный",
     "Small-vessel occlusion (TOAST 3)."),
    (5, "other", "#8e24aa", "Other determined", "Другой установленной этиологии",
     "Stroke of other determined etiology (TOAST 4)."),
]


def forwards(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for role in ROLES:
        Group.objects.get_or_create(name=role)
    LabelSet = apps.get_model("cases", "LabelSet")
    Label = apps.get_model("cases", "Label")
    if LabelSet.objects.exists():
        return
    label_set = LabelSet.objects.create(name="TOAST", version=1, is_active=True)
    for value, name, color, en, ru, description in DEFAULT_LABELS:
        Label.objects.create(
            label_set=label_set, value=value, name=name, color=color,
            titles={"en": en, "ru": ru}, description=description,
        )


def backwards(apps, schema_editor):
    apps.get_model("cases", "LabelSet").objects.filter(name="TOAST", version=1).delete()
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]
    operations = [migrations.RunPython(forwards, backwards)]
