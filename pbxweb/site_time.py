"""The site's time zone (PBX_TIMEZONE): Asterisk and the app store UTC; people read local time."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app


def site_zone() -> ZoneInfo | timezone:
    """PBX_TIMEZONE (an IANA name), else the server's own zone."""
    name = current_app.config.get("PBX_TIMEZONE")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return datetime.now().astimezone().tzinfo


def local(value: datetime | None) -> datetime | None:
    """A UTC time (naive, as the cdr table holds it, or aware) in the site's zone."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(site_zone())
