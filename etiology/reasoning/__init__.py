"""Pure etiology reasoning (no Django): the work-up's fields, the lesion pattern of a label
volume, TOAST rules and consistency checks. The services and pages wrap it."""
