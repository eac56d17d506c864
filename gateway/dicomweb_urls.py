"""DICOMweb STOW-RS (mounted at "/dicomweb/"; PS3.18 paths without a trailing slash, one is
tolerated)."""

from django.urls import URLPattern, URLResolver, re_path

from .apis import StowApi, StowStudyApi

app_name = "dicomweb"

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^studies/?$", StowApi.as_view(), name="stow"),
    re_path(r"^studies/(?P<study_uid>[0-9.]{1,64})/?$", StowStudyApi.as_view(), name="stow-study"),
]
