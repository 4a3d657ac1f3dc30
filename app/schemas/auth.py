"""Token answers (RFC 6749 §5.1) and the caller's identity."""

import uuid

from pydantic import BaseModel


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    scope: str
    refresh_token: str | None = None


class OAuthErrorResponse(BaseModel):
    error: str
    error_description: str


class MembershipOut(BaseModel):
    unit_id: uuid.UUID
    unit_code: str
    role: str


class MeResponse(BaseModel):
    kind: str
    id: uuid.UUID
    name: str
    display_name: str | None = None
    agency: str | None
    memberships: list[MembershipOut]
    platform_roles: list[str]
    scopes: list[str]
    max_marking: str
