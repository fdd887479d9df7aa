"""Timestamps as the contract writes them."""

from __future__ import annotations

import datetime


def utc_now_iso(epoch: float) -> str:
    """`epoch` as UTC ISO 8601 with milliseconds and a `Z`."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
