"""Admin for per-user preferences."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from .models import Profile

if TYPE_CHECKING:
    # django-stubs makes the admin classes generic; Django's own are not subscriptable at run
    # time, so the parametrised bases exist for the type checker only.
    ModelAdminBase = admin.ModelAdmin[Any]
else:
    ModelAdminBase = admin.ModelAdmin


@admin.register(Profile)
class ProfileAdmin(ModelAdminBase):
    list_display = ("user", "language")
    search_fields = ("user__username",)
