"""Flare settings. Imports nothing of ours."""
from config.settings import (
    BlueskySettings,
    DashboardSettings,
    NotifierSettings,
    RedditSettings,
    ServiceSettings,
    Settings,
    TriageSettings,
    XSettings,
)

__all__ = [
    "BlueskySettings", "DashboardSettings", "NotifierSettings", "RedditSettings", "ServiceSettings",
    "Settings", "TriageSettings", "XSettings",
]
