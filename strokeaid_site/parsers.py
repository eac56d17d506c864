"""Request parsers: DRF's JSON parser, with every malformed body a 400 (never a 500)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """A JSON body nested thousands of levels deep makes the decoder raise RecursionError,
    which DRF's parser lets through as a server error; it is a malformed body like any other."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(_("JSON parse error: the document is nested too deeply.")) from exc
