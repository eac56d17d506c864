"""Admin of the annotation app: read-mostly (masks change only through the services)."""

from django.contrib import admin

from .models import Annotation, AnnotationRevision


class RevisionInline(admin.TabularInline):
    model = AnnotationRevision
    extra = 0
    can_delete = False
    fields = ["number", "created_at", "created_by", "source", "label_counts", "volumes_ml"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Annotation)
class AnnotationAdmin(admin.ModelAdmin):
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
