"""One clock for every screen: 24-hour time in the service's time zone, with the zone named.

Screens used to mix UTC 24-hour times from the server with the browser's 12-hour clock; a
dispatcher comparing "13:02" with "1:02 PM" at 3 a.m. should never have to convert.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def make_clock(tz_name: str) -> Callable[..., str]:
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")

    def clock(value: datetime | None, seconds: bool = True, date: bool = False) -> str:
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)  # stored times are UTC
        local = value.astimezone(zone)
        fmt = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
        return f"{local.strftime(fmt)} {local.tzname()}"

    return clock
