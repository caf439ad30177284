"""Logging for the app and the CLI: no email address or phone number ever reaches a log line.

Redaction happens where every record is born: `install_redaction()` wraps the process's
LogRecord factory, so records of every logger (ours, uvicorn's, the neo4j driver's, any library's)
are redacted at any level before any handler, pytest's caplog included, can see them. The same
redaction is also available as a `logging.Filter` for handlers configured elsewhere (uvicorn's
dictConfig), in case a library builds records by hand with `logging.makeLogRecord`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

REDACTED_EMAIL: Final = "[email]"
REDACTED_PHONE: Final = "[phone]"

# Emails, also percent-encoded (query strings in access logs) and JSON-escaped.
_EMAIL = re.compile(
    r"[\w.!#$&*+?^~%-]+(?:@|%40|\\u0040)[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}",
    re.IGNORECASE,
)

# Phone candidates: international (+, %2B or 00 prefix), a parenthesised area code, or digit
# groups joined by single separators, or a bare run of digits. Candidates are then judged by digit
# count and shape (`_phone_or_not`), so dates, times, IPv4 addresses, decimals and counts survive.
_PHONE = re.compile(
    r"(?:(?<![\w+])(?:\+|%2B)|(?<![\w.+/:-])00)\s?\d{1,4}(?:[\s.\-/]?\(?\d{1,5}\)?){1,6}"
    r"(?![\w+/:-]|\.\d)"
    r"|(?<![\w.+/:-])"
    r"(?:\(\d{2,5}\)\s?\d{2,5}(?:[\s.\-]?\d{2,5}){0,3}|\d{2,8}(?:[\s.\-/]\d{2,8}){1,4}|\d{7,15})"
    r"(?![\w+/:-]|\.\d)",
    re.IGNORECASE,
)
_DATE = re.compile(r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\b")
_IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_NANP = re.compile(r"^\d{3}[\s.\-]\d{3}[\s.\-]\d{4}$")
_SEPARATOR = re.compile(r"[\s.\-/]")
_DIGIT = re.compile(r"\d")


def _phone_or_not(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = len(_DIGIT.findall(text))
    if digits < 7 or digits > 15:
        return text
    if text.startswith(("+", "%2B", "%2b", "00", "(")):
        return REDACTED_PHONE
    if _DATE.match(text) or _IPV4.match(text):
        return text
    if text.isdigit():
        # A bare run of digits: a national number with a trunk 0 (07700900123) or a
        # 10-digit North American number; other runs are counts, ids and epoch times.
        national = text.startswith("0") and 9 <= digits <= 11
        return REDACTED_PHONE if national or (digits == 10 and text[0] in "23456789") else text
    # Grouped digits: a trunk 0 (020 7946 0958), three or more groups, or 415-555-2671.
    groups = len(_SEPARATOR.findall(text)) + 1
    if text.startswith("0") or groups >= 3 or _NANP.match(text):
        return REDACTED_PHONE
    return text


def redact(text: str) -> str:
    """`text` with every email address and phone number replaced by a placeholder."""
    if "@" in text or "%40" in text or "\\u0040" in text:
        text = _EMAIL.sub(REDACTED_EMAIL, text)
    if len(_DIGIT.findall(text)) >= 7:
        text = _PHONE.sub(_phone_or_not, text)
    return text


def _redact_arg(arg: Any) -> Any:
    if arg is None or isinstance(arg, bool | int | float):
        return arg
    text = arg if isinstance(arg, str) else str(arg)
    redacted = redact(text)
    if isinstance(arg, str) or redacted != text:
        return redacted
    return arg


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a record in place: its message, its args, its exception and stack text."""
    record.msg = redact(record.msg if isinstance(record.msg, str) else str(record.msg))
    args = record.args
    if isinstance(args, Mapping):
        record.args = {key: _redact_arg(value) for key, value in args.items()}
    elif isinstance(args, tuple) and args:
        record.args = tuple(_redact_arg(value) for value in args)
        # A value split across args ("%s@%s") is caught on the whole message. uvicorn's access
        # formatter unpacks its args, so its records keep their shape.
        if record.name != "uvicorn.access":
            try:
                message = record.getMessage()
            except (TypeError, ValueError):
                message = None
            if message is not None and redact(message) != message:
                record.msg, record.args = redact(message), ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class RedactingFilter(logging.Filter):
    """A handler filter that redacts every record passing through (and drops none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


_installed: Callable[..., logging.LogRecord] | None = None


def install_redaction() -> None:
    """Redact every LogRecord the process creates from now on (idempotent)."""
    global _installed
    current = logging.getLogRecordFactory()
    if current is _installed:
        return
    previous = current

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    _installed = factory
    logging.setLogRecordFactory(factory)


LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str | int = "INFO") -> None:
    """Logging of the app and the CLI: one stderr handler on the root logger, redacting."""
    install_redaction()
    root = logging.getLogger()
    root.setLevel(level)
    if not any(getattr(h, "_cg_handler", False) for h in root.handlers):
        ours = logging.StreamHandler()
        ours.setFormatter(logging.Formatter(LOG_FORMAT))
        setattr(ours, "_cg_handler", True)  # noqa: B010
        root.addHandler(ours)
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def uvicorn_log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's own logging config with the redacting filter on each of its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {
        key: (dict(value) if isinstance(value, dict) else value)
        for key, value in LOGGING_CONFIG.items()
    }
    config["filters"] = {"redact": {"()": "customer_graph.logging.RedactingFilter"}}
    config["handlers"] = {
        name: {**handler, "filters": ["redact"]}
        for name, handler in LOGGING_CONFIG["handlers"].items()
    }
    config["loggers"] = {
        name: {**logger, "level": level.upper()} if "level" in logger else dict(logger)
        for name, logger in LOGGING_CONFIG["loggers"].items()
    }
    return config
