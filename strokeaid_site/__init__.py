"""Stroke AID Django project: settings, URL routing, ASGI entry point and shared plumbing."""
