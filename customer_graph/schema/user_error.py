"""`UserError`: what a mutation payload reports about input it could not act on."""

from __future__ import annotations

import strawberry


@strawberry.type(description="Input a mutation could not act on; nothing was written for it.")
class UserError:
    field: list[str] | None = strawberry.field(
        description="The path of the input field at fault, if one is."
    )
    message: str
    code: str = strawberry.field(description="Machine-readable: NOT_FOUND, SUPPRESSED, …")
