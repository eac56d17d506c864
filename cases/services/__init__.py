"""Writes of the cases app (cases, series, uploads), split by sub-domain.

Import from the sub-modules: ``cases.services.case``, ``cases.services.series``,
``cases.services.upload`` ...
"""
