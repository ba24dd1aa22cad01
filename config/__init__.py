"""Flare settings. Imports nothing of ours."""
from config.settings import (
    BlueskySettings,
    DashboardSettings,
    RedditSettings,
    ServiceSettings,
    Settings,
    TriageSettings,
    XSettings,
)

__all__ = [
    "BlueskySettings", "DashboardSettings", "RedditSettings", "ServiceSettings",
    "Settings", "TriageSettings", "XSettings",
]
