"""OpenAPI schema generation tuned to the code's shape (one APIView per operation).

Every APIView nests its own ``InputSerializer``/``OutputSerializer``; drf-spectacular would
name all of them "Input"/"Output" and collide. Components of nested serializers are named
after their view instead: ``CaseListCreateApi.InputSerializer`` -> ``CaseListCreateInput``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer if isinstance(serializer, type) else serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if not outer:
            return super().get_serializer_name(serializer, direction)
        view = outer.split(".")[-1].removesuffix("Api").removesuffix("View")
        return view + inner
