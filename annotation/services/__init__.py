"""Writes of the annotation app: mask saves (revisions), restores, imports and the review flow.

Every function here runs inside ``storage.transactional()`` (or ``transaction.atomic``), records
its change in the audit trail and keeps ``Case.status`` in step with the annotations' states.

Modules: ``validation`` (the checks before a write), ``revisions`` (saves, restores,
imports), ``workflow`` (submit, approve, return; the case's labelling) and ``status`` (the
case status the annotations imply).
"""

from .revisions import (
    annotation_import_mask,
    annotation_revision_restore,
    mask_save,
)
from .status import (
    case_status_from_annotations,
)
from .validation import (
    CheckedMask,
    etiology_mismatch,
    mask_validate,
    voxel_volume_ml,
)
from .workflow import (
    COMMENT_MAX_LENGTH,
    annotation_approve,
    annotation_return,
    annotation_submit,
    case_labelling_update,
)

__all__ = [
    "COMMENT_MAX_LENGTH",
    "CheckedMask",
    "annotation_approve",
    "annotation_import_mask",
    "annotation_return",
    "annotation_revision_restore",
    "annotation_submit",
    "case_labelling_update",
    "case_status_from_annotations",
    "etiology_mismatch",
    "mask_save",
    "mask_validate",
    "voxel_volume_ml",
]
