"""Admin of the annotation app: read-mostly (masks change only through the services)."""

from typing import TYPE_CHECKING, Any, cast

from django.contrib import admin

from .models import Annotation, AnnotationRevision

if TYPE_CHECKING:
    # django-stubs makes the admin classes generic; Django's own are not subscriptable at run
    # time, so the parametrised bases exist for the type checker only.
    ModelAdminBase = admin.ModelAdmin[Any]
    TabularInlineBase = admin.TabularInline[Any, Any]
else:
    ModelAdminBase = admin.ModelAdmin
    TabularInlineBase = admin.TabularInline


class RevisionInline(TabularInlineBase):
    model = AnnotationRevision
    extra = 0
    can_delete = False
    fields = ["number", "created_at", "created_by", "source", "label_counts", "volumes_ml"]
    readonly_fields = cast("list[str]", fields)

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Annotation)
class AnnotationAdmin(ModelAdminBase):
    list_display = [
        "id",
        "series",
        "annotator",
        "is_consensus",
        "state",
        "revision_count",
        "updated_at",
    ]
    list_filter = ["state", "is_consensus", "series__kind"]
    search_fields = ["series__case__code", "annotator__username"]
    list_select_related = ["series__case", "annotator"]
    readonly_fields = [
        "series",
        "annotator",
        "is_consensus",
        "state",
        "current_revision",
        "revision_count",
        "reviewer",
        "review_comment",
        "submitted_at",
        "reviewed_at",
        "created_at",
        "updated_at",
    ]
    inlines = [RevisionInline]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
