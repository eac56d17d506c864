"""Local development: the embedded default (SQLite, local files, ORM broker, in-memory layer)."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
