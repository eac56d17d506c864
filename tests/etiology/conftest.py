"""Fixtures shared with the inference tests (phantom cases with masks, registered models)."""

from tests.inference.conftest import make_phantom_case, registered_model

__all__ = ["make_phantom_case", "registered_model"]
