"""Fixtures of the platform-wide tests: the inference tests' phantom cases and models."""

from tests.inference.conftest import make_phantom_case, registered_model  # noqa: F401
