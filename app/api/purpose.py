"""The purpose of access, as routes that may require it document it.

The audit trail reads it from the request itself (app/services/audit.py) and the
services decide when it is required; this dependency only puts it in the API's
description."""

from typing import Annotated

from fastapi import Depends, Header, Query

PURPOSE_DOC = (
    "Purpose of access: the reference of a case you can see (CROSS13-2026-0042) or a "
    "justification of at least 10 characters."
)


def purpose(
    x_purpose: Annotated[str | None, Header(max_length=500, description=PURPOSE_DOC)] = None,
    purpose: Annotated[str | None, Query(max_length=500, description=PURPOSE_DOC)] = None,
) -> str | None:
    return x_purpose or purpose


PurposeDep = Annotated[str | None, Depends(purpose)]
