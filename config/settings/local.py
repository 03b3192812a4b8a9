"""A developer's laptop: `make run`. DEBUG on, SQLite and the embedded broker unless told otherwise."""
from .base import *  # noqa: F401,F403
from .base import env_bool

DEBUG = env_bool("DEBUG", True)
