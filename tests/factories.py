"""factory_boy factories shared by the tests."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import Profile
from cases.models import Case, Label


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pass-Word-123")

    @factory.post_generation
    def roles(self, create: bool, extracted: list[str] | None, **kwargs: object) -> None:
        if create:
            self.save()
            Profile.objects.get_or_create(user=self)
        if create and extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))


class CaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Case

    code = factory.Sequence(lambda n: f"SA-{n:05d}")
    created_by = factory.SubFactory(UserFactory)
    confirmed = False


def label(name: str) -> Label:
    """The active label set's label called ``name``."""
    return Label.objects.get(label_set__is_active=True, name=name)
