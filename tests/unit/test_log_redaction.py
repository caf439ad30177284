"""Redaction of emails and phone numbers from log records (customer_graph/logging.py)."""

from __future__ import annotations

import io
import logging

import pytest

from customer_graph.logging import (
    REDACTED_EMAIL,
    REDACTED_PHONE,
    RedactingFilter,
    install_redaction,
    redact,
    uvicorn_log_config,
)

PII = [
    ("Ann.Lee+crm@Example.co.uk", REDACTED_EMAIL),
    ("ann%40example.com", REDACTED_EMAIL),
    ("josé@exämple.de", REDACTED_EMAIL),
    ("+14155552671", REDACTED_PHONE),
    ("+1 415-555-2671", REDACTED_PHONE),
    ("+1 (415) 555-2671", REDACTED_PHONE),
    ("(415) 555-2671", REDACTED_PHONE),
    ("415-555-2671", REDACTED_PHONE),
    ("415.555.2671", REDACTED_PHONE),
    ("415 555 2671", REDACTED_PHONE),
    ("4155552671", REDACTED_PHONE),
    ("020 7946 0958", REDACTED_PHONE),
    ("07700 900123", REDACTED_PHONE),
    ("07700900123", REDACTED_PHONE),
    ("+44 (0)20 7946 0958", REDACTED_PHONE),
    ("0049 30 1234567", REDACTED_PHONE),
    ("030/1234567", REDACTED_PHONE),
    ("+33 6 12 34 56 78", REDACTED_PHONE),
    ("06 12 34 56 78", REDACTED_PHONE),
    ("%2B14155552671", REDACTED_PHONE),
]

NOT_PII = [
    "2026-11-29 14:01:47,123",
    "2026-11-29T14:01:47.123456+00:00",
    "127.0.0.1:7687",
    "bolt://192.168.100.200:7687",
    "neo4j 5.26.0",
    "processed 1234567 rows",
    "epoch 1764424907",
    "took 1234.5678 ms",
    "amount 1500000.00",
    "uuid 550e8400-e29b-41d4-a716-446655440000",
    "elementId 4:0f0b3c51-3fbd-4d3c-8d0a-111111111111:12345",
    "queue 2500/2500, counts 1500 2300",
]


@pytest.mark.parametrize(("value", "placeholder"), PII)
def test_pii_is_redacted_in_context(value: str, placeholder: str) -> None:
    text = f"row {{'v': '{value}'}} then ({value}) and phone={value};"
    redacted = redact(text)
    assert value not in redacted
    assert redacted.count(placeholder) == 3


@pytest.mark.parametrize("text", NOT_PII)
def test_other_numbers_stay_readable(text: str) -> None:
    assert redact(text) == text


def _capture(logger: logging.Logger) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger.addHandler(handler)
    return stream


def test_records_of_any_logger_and_level_are_redacted() -> None:
    install_redaction()
    for name in ("customer_graph.x", "uvicorn.error", "neo4j.io", "somelib"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        stream = _capture(logger)
        logger.debug("identify %s %r", "ann@example.com", {"phone": "+14155552671"})
        logger.info({"email": "bob@example.org"})
        logger.warning("split across args %s@%s", "carol", "example.net")
        try:
            raise ValueError("bad email dave@example.com")
        except ValueError:
            logger.exception("failed for %s", "+44 20 7946 0958")
        out = stream.getvalue()
        for pii in ("ann@", "example.com", "4155552671", "bob@", "carol@example", "7946"):
            assert pii not in out, (name, out)
        assert "ValueError: bad email [email]" in out


def test_uvicorn_access_records_keep_their_shape() -> None:
    install_redaction()
    from uvicorn.logging import AccessFormatter

    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/graphql?q=ann%40example.com", "1.1", 200),
        None,
    )
    line = AccessFormatter('%(client_addr)s "%(request_line)s" %(status_code)s').format(record)
    assert line == '127.0.0.1:5000 "GET /graphql?q=[email] HTTP/1.1" 200 OK'


def test_uvicorn_config_filters_every_handler() -> None:
    config = uvicorn_log_config("debug")
    assert set(config["handlers"]) == {"default", "access"}
    for handler in config["handlers"].values():
        assert handler["filters"] == ["redact"]
    assert config["filters"]["redact"]["()"] == "customer_graph.logging.RedactingFilter"
    record = logging.makeLogRecord({"msg": "to %s", "args": ("ann@example.com",)})
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "to [email]"
