"""Expected errors: raised by resolvers, shown to clients with a machine-readable code.

Anything else raised while resolving is unexpected and masked (see `guards.ErrorPolicy`).
"""

from __future__ import annotations

from typing import Final

BAD_USER_INPUT: Final = "BAD_USER_INPUT"
INVALID_ID: Final = "INVALID_ID"
INVALID_CURSOR: Final = "INVALID_CURSOR"
PAGE_SIZE_TOO_LARGE: Final = "PAGE_SIZE_TOO_LARGE"
INPUT_LIST_TOO_LONG: Final = "INPUT_LIST_TOO_LONG"
SERVICE_UNAVAILABLE: Final = "SERVICE_UNAVAILABLE"
INTERNAL_SERVER_ERROR: Final = "INTERNAL_SERVER_ERROR"


class ApiError(Exception):
    """An error the client can act on; its message is shown as it is, so it names no data."""

    def __init__(self, message: str, code: str = BAD_USER_INPUT) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
