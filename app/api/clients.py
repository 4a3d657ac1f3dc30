"""Service clients (agency systems), managed by platform admins."""

import uuid

from fastapi import APIRouter

from app.auth.principal import AdminDep
from app.db import SessionDep
from app.schemas.clients import ClientCreate, ClientOut, ClientSecret
from app.services import clients as clients_service

router = APIRouter(prefix="/admin/clients", tags=["admin"])


@router.get("", response_model=list[ClientOut], name="client.list")
async def list_clients(session: SessionDep, principal: AdminDep) -> list[ClientOut]:
    """Every service client (admin); secrets are never shown again."""
    return [
        ClientOut.model_validate(c) for c in await clients_service.list_clients(session, principal)
    ]


@router.post("", response_model=ClientSecret, status_code=201, name="client.create")
async def add_client(body: ClientCreate, session: SessionDep, principal: AdminDep) -> ClientSecret:
    """Create a client bound to one unit and agency (admin). The secret is in this answer
    only; it is stored hashed."""
    client, secret = await clients_service.add_client(session, principal, **body.model_dump())
    return ClientSecret(client=ClientOut.model_validate(client), client_secret=secret)


@router.post("/{client_id}/rotate", response_model=ClientSecret, name="client.rotate")
async def rotate_client(
    client_id: uuid.UUID, session: SessionDep, principal: AdminDep
) -> ClientSecret:
    """Replace a client's secret (admin); the old secret stops working at once."""
    client = await clients_service.get_client(session, principal, id=client_id)
    secret = await clients_service.rotate_secret(session, principal, client)
    return ClientSecret(client=ClientOut.model_validate(client), client_secret=secret)


@router.post("/{client_id}/disable", response_model=ClientOut, name="client.disable")
async def disable_client(
    client_id: uuid.UUID, session: SessionDep, principal: AdminDep
) -> ClientOut:
    """Disable a client (admin); its tokens are refused from the very next request."""
    client = await clients_service.get_client(session, principal, id=client_id)
    client = await clients_service.set_active(session, principal, client, False)
    return ClientOut.model_validate(client)
