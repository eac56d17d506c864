"""Annotation models."""
