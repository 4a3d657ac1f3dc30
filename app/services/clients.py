"""Service clients (agency systems): creation, secret rotation, disabling."""

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_secret, new_secret
from app.auth.principal import Principal
from app.errors import Problem, conflict, forbidden, invalid_field, not_found
from app.models import ServiceClient, Unit
from app.services import audit

CLIENT_SCOPES = ("records:read", "records:write")


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise forbidden("Only platform administrators manage service clients.")


async def list_clients(session: AsyncSession, principal: Principal) -> list[ServiceClient]:
    _require_admin(principal)
    rows = await session.scalars(select(ServiceClient).order_by(ServiceClient.client_id))
    return list(rows.all())


async def get_client(
    session: AsyncSession,
    principal: Principal,
    *,
    id: uuid.UUID | None = None,
    client_id: str | None = None,
) -> ServiceClient:
    _require_admin(principal)
    if id is not None:
        client = await session.get(ServiceClient, id)
    else:
        client = await session.scalar(
            select(ServiceClient).where(ServiceClient.client_id == client_id)
        )
    if client is None:
        raise Problem(404, "not_found", "Not found", "No such service client.")
    return client


async def add_client(
    session: AsyncSession,
    principal: Principal,
    *,
    client_id: str,
    name: str,
    unit_id: uuid.UUID,
    agency: str,
    scopes: list[str],
    max_marking: str,
    secret: str | None = None,
) -> tuple[ServiceClient, str]:
    """Create a client; returns it with its secret, which is stored hashed and shown once."""
    _require_admin(principal)
    unknown = sorted(set(scopes) - set(CLIENT_SCOPES))
    if unknown:
        raise invalid_field(["body", "scopes"], f"unknown scopes: {', '.join(unknown)}")
    if await session.get(Unit, unit_id) is None:
        raise not_found("unit")
    secret = secret or new_secret()
    client = ServiceClient(
        client_id=client_id,
        name=name,
        secret_hash=hash_secret(secret),
        unit_id=unit_id,
        agency=agency,
        scopes=sorted(set(scopes)),
        max_marking=max_marking,
    )
    session.add(client)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise conflict("client_exists", f"A client {client_id!r} already exists.") from exc
    audit.note(session, object_type="client", object_id=client.id, client_id=client_id)
    return client, secret


async def rotate_secret(session: AsyncSession, principal: Principal, client: ServiceClient) -> str:
    """Replace the client's secret; the old one stops working at once."""
    _require_admin(principal)
    secret = new_secret()
    client.secret_hash = hash_secret(secret)
    audit.note(session, object_type="client", object_id=client.id, secret="rotated")
    return secret


async def set_active(
    session: AsyncSession, principal: Principal, client: ServiceClient, active: bool
) -> ServiceClient:
    """Enable or disable a client; a disabled client is refused on the very next request."""
    _require_admin(principal)
    client.is_active = active
    audit.note(session, object_type="client", object_id=client.id, active=active)
    return client
