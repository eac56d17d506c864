"""Websocket routes."""

from django.urls import path

from .consumers import JobProgressConsumer

websocket_urlpatterns = [
    path("ws/jobs/<str:kind>/<int:job_id>/", JobProgressConsumer.as_asgi()),
]
