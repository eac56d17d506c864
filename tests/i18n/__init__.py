"""Translation checks: static scanners for untranslated user-facing text."""
