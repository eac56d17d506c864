"""Lesion masks (label volumes) with revisions, the slice editor and the review workflow."""
