"""URL routes of the annotation app: pages under page_urlpatterns, REST under api_urlpatterns."""

from django.urls import path  # noqa: F401

app_name = "annotation"
page_urlpatterns: list = []
api_urlpatterns: list = []
urlpatterns = page_urlpatterns
