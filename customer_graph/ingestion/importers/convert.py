"""Conversions of export cells: dates, amounts, durations, booleans, id lists, domains.

Each function takes the cell's text and returns a value or raises ValueError with a short reason;
the mapping turns that into a rejected row naming the column.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, tzinfo

# Formats that CRM exports write besides ISO 8601 (which `fromisoformat` reads): US dates from
# Dynamics' and Salesforce's spreadsheet exports, Zoho's and HubSpot's display formats.
DATETIME_FORMATS = (
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%b %d, %Y %I:%M %p",
    "%b %d, %Y %H:%M",
    "%b %d, %Y",
    "%d %b %Y %H:%M",
    "%d %b %Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
)
TRUE = frozenset({"true", "t", "yes", "y", "1"})
FALSE = frozenset({"false", "f", "no", "n", "0"})
# An amount with an optional ISO code or symbol before or after it: `USD 1,200.50`, `$5`, `5 €`.
_AMOUNT = re.compile(
    r"^(?:[A-Za-z]{3}\s*)?[$€£¥₹]?\s*"
    r"([+-]?\d[\d, ]*(?:\.\d+)?|[+-]?\.\d+)"
    r"\s*(?:[$€£¥₹]|[A-Za-z]{3})?$"
)
_HMS = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:\.\d+)?$")
_ID_SEPARATORS = re.compile(r"[;,]")
# Before 2001-09-09 an epoch in seconds has 9 digits; in milliseconds, 12.
_EPOCH_MS_MIN = 100_000_000_000


def parse_datetime(text: str, tz: tzinfo = UTC) -> datetime:
    """A timezone-aware datetime; naive values are in `tz`; epoch seconds or milliseconds too."""
    value = text.strip()
    if value.isdigit() and len(value) >= 9:
        number = int(value)
        seconds = number / 1000 if number >= _EPOCH_MS_MIN else number
        return datetime.fromtimestamp(seconds, UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = _parse_with_formats(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed


def _parse_with_formats(value: str) -> datetime:
    for fmt in DATETIME_FORMATS:
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    raise ValueError(f"not a date/time: {value!r}")


def parse_amount(text: str) -> float:
    """A money amount: currency symbols or codes around it and thousands separators are ignored."""
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise ValueError(f"not an amount: {text!r}")
    return float(match.group(1).replace(",", "").replace(" ", ""))


def parse_number(text: str) -> float:
    try:
        value = float(text.strip().replace(",", ""))
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a number: {text!r}")
    return value


def parse_int(text: str) -> int:
    value = parse_number(text)
    if value != int(value):
        raise ValueError(f"not a whole number: {text!r}")
    return int(value)


def parse_duration(text: str) -> int:
    """Seconds from `HH:MM:SS`, `MM:SS` or a plain number of seconds."""
    value = text.strip()
    match = _HMS.match(value)
    if match:
        hours, minutes, seconds = match.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    seconds_value = parse_number(value)
    if seconds_value < 0:
        raise ValueError(f"negative duration: {text!r}")
    return round(seconds_value)


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"not a yes/no value: {text!r}")


def split_ids(text: str) -> list[str]:
    """Ids of a multi-valued cell (`123;456`, `123, 456`), in order, without blanks."""
    return [part.strip() for part in _ID_SEPARATORS.split(text) if part.strip()]


def domain_of(text: str) -> str | None:
    """`https://www.Acme.example/about` -> `acme.example`; None if there is no host."""
    value = text.strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    value = value.rsplit("@", 1)[-1].split(":", 1)[0].strip(".")
    if value.startswith("www."):
        value = value[4:]
    return value if "." in value and " " not in value else None


def salesforce_id18(value: str) -> str:
    """Salesforce's case-insensitive 18-character form of a 15-character record id.

    Reports export 15-character ids and the API 18-character ones; both name the same record.
    """
    if len(value) != 15 or not value.isalnum():
        return value
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for position, char in enumerate(value[start : start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += alphabet[bits]
    return value + suffix
