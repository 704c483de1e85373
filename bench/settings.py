"""The site's own settings plus one bare view: the ceiling the pages are measured against."""

from superlists.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
