"""The fleet benchmark's web process: the production settings, plus the baseline views' URLs."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.fleet_urls"
