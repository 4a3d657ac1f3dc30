"""The audit trail (app/services/audit.py): every named route leaves its event, in the
request's own transaction; denials leave theirs; the table is append-only for every role;
the hash chains reveal rows altered, removed or forged; the purpose of access; the
auditors' endpoints.

Each request is sent with an `X-Request-ID` of its own, and its events are read back with
SQL by that id, so tests do not depend on each other or on what else is in the database.
Tampering happens only in scratch databases (or in transactions rolled back there): the
shared test database's trail stays intact.
"""

import asyncio
import contextlib
import functools
import json
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from app.auth.tokens import issue_access_token
from app.db import Database, migrate_async
from app.main import PUBLIC_PATHS
from app.services import audit
from tests import conftest
from tests.conftest import events_of, record_body, run_cli, sign_in, the_event

API = "/api/v1"
TIMEOUT = 120  # a safety net against a hung request or command, not a measurement
PARAM = re.compile(r"{([^}]+)}")
DOTTED = re.compile(r"[a-z_]+(\.[a-z_]+)+")
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
JUSTIFICATION = "Recoupement d'un signalement de la douane"
SCRATCH_KEY = "a-scratch-audit-key-of-enough-length-0123456789"
SCRATCH_ENV = {"CROSSINTEL_AUDIT_KEY": SCRATCH_KEY}  # for run_cli on a scratch database


# --- requests and their events ---------------------------------------------------------


# Every request of this file: an `audit-test-…` X-Request-ID, given up after TIMEOUT.
send = functools.partial(conftest.send, label="audit", wait=TIMEOUT)


# --- the routes ------------------------------------------------------------------------


def protected_routes(app) -> dict[str, RouteContext]:
    """Every API route outside the public list, by name (walked as tests/test_routes.py
    does: `app.routes` holds one opaque node per included router). The web client's pages
    reuse the API's action names and are checked in tests/test_web.py."""
    routes = [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute)
        and r.path.startswith("/api/")
        and r.path not in PUBLIC_PATHS
    ]
    by_name = {r.original_route.name: r for r in routes}
    assert len(by_name) == len(routes), "two protected routes share a name"
    return by_name


def path_params(template: str, path: str) -> dict[str, str]:
    """The values of a route template's parameters in a concrete path."""
    pattern = "^" + PARAM.sub(lambda m: f"(?P<{m[1]}>[^/]+)", template) + "$"
    match = re.match(pattern, path)
    assert match, f"{path} is not a path of {template}"
    return match.groupdict()


def named_object(name: str, params: dict[str, str]) -> str | None:
    """The object a path names: the parameter `<object>_id` of a route `object.verb`."""
    return params.get(f"{name.split('.')[0]}_id")


def random_path(template: str) -> tuple[str, dict[str, str]]:
    """The template with a random UUID for each parameter, and those UUIDs."""
    params = {name: str(uuid.uuid4()) for name in PARAM.findall(template)}
    return PARAM.sub(lambda m: params[m[1]], template), params


def landline() -> str:
    """A fresh Paris landline number (01 4x xx xx xx)."""
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    return "01 4" + " ".join([digits[0], *(digits[i : i + 2] for i in range(1, 7, 2))])


def mobile() -> str:
    """A fresh French mobile number, national form (06 1x … to 06 8x …: valid ranges)."""
    digits = "1245678"[uuid.uuid4().int % 7] + f"{uuid.uuid4().int % 10**7:07d}"
    return "06 " + " ".join(digits[i : i + 2] for i in range(0, 8, 2))


def operation_body() -> dict[str, Any]:
    """An operation far in the future in the middle of the South Pacific: it conflicts
    with no other test's operation."""
    starts = datetime.now(UTC) + timedelta(days=400 + uuid.uuid4().int % 300)
    return {
        "kind": "surveillance",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=2)).isoformat(),
        "lat": -50 - (uuid.uuid4().int % 1000) / 100,
        "lon": -140 - (uuid.uuid4().int % 1000) / 100,
        "radius_m": 10,
    }


def well_formed(name: str) -> dict[str, Any]:
    """Request arguments valid for the route `name` (bodies naming random objects), so
    that what answers is the route's own check, not request validation."""
    some = str(uuid.uuid4())
    tag = uuid.uuid4().hex[:8]
    bodies: dict[str, dict[str, Any]] = {
        "unit.create": {
            "json": {
                "code": f"DET-T{tag.upper()}",
                "name": "Détachement de test",
                "kind": "detachement",
                "parent_id": some,
            }
        },
        "unit.update": {"json": {"name": "Nouveau nom"}},
        "user.create": {
            "json": {
                "username": f"t.{tag}",
                "display_name": "Compte de test",
                "agency": "police",
                "password": "a-long-test-password-" + tag,
            }
        },
        "user.update": {"json": {"is_active": True}},
        "user.membership.put": {"json": {"unit_id": some, "role": "officer"}},
        "client.create": {
            "json": {
                "client_id": f"t-{tag}",
                "name": "Système de test",
                "unit_id": some,
                "agency": "douane",
                "scopes": ["records:read"],
            }
        },
        "record.create": {"json": record_body(f"Signalement {tag}")},
        "record.update": {"json": {"title": "Titre revu"}, "headers": {"If-Match": '"1"'}},
        "record.attachment.upload": {"files": {"file": ("pv.pdf", PDF, "application/pdf")}},
        "record.review": {
            "json": {"decision": "keep", "justification": "Toujours utile au dossier"}
        },
        "case.create": {"json": {"title": f"Filière {tag}", "priority": "high"}},
        "case.update": {"json": {"summary": "Résumé revu"}, "headers": {"If-Match": '"1"'}},
        "case.team.put": {"json": {"role": "member"}},
        "case.record.link": {"json": {"record_id": some}},
        "case.entity.add": {"json": {"entity": {"kind": "person", "surname": "Dupont"}}},
        "case.task.add": {"json": {"title": "Exploiter la téléphonie"}},
        "case.task.update": {"json": {"status": "doing"}},
        "case.note.add": {"json": {"body": "Surveillance du conteneur."}},
        "case.drug_seizure.add": {
            "json": {
                "substance": "cocaine",
                "quantity": "12.5",
                "quantity_unit": "kg",
                "seized_on": "2026-09-02",
            }
        },
        "case.asset_seizure.add": {
            "json": {"category": "cash", "estimated_value_eur": "15000", "seized_on": "2026-09-02"}
        },
        "case.arrest.add": {"json": {"count": 2, "arrested_on": "2026-09-02"}},
        "case.close": {"json": {"outcome": "no_further_action", "note": "Classement."}},
        "case.escalate": {"json": {"justification": "Dimension régionale"}},
        "case.delegate": {"json": {"to_unit_id": some, "note": "Pour exploitation"}},
        "escalation.decide": {"json": {"decision": "return", "note": "Compléter le dossier"}},
        "hit.request_access": {"json": {"justification": "Même numéro dans notre enquête"}},
        "access_request.decide": {"json": {"decision": "decline", "note": "Source à protéger"}},
        "exclusion.create": {
            "json": {"type": "phone", "value": landline(), "reason": "Standard téléphonique"}
        },
        "operation.create": {"json": operation_body()},
        "operation.update": {"json": {"radius_m": 25}, "headers": {"If-Match": '"1"'}},
    }
    return bodies.get(name, {})


# --- a world to act in -----------------------------------------------------------------


class World:
    """The app through its API, with helpers that create what a request needs."""

    def __init__(self, client, auth, settings, new_user) -> None:
        self.client, self.auth, self.settings, self.new_user = client, auth, settings, new_user
        self._ids: dict[str, str] = {}
        self._units: dict[str, str] = {}

    async def headers(self, who: str | dict[str, str]) -> dict[str, str]:
        return who if isinstance(who, dict) else await self.auth(who)

    async def ok(
        self, who: str | dict[str, str], method: str, path: str, status: int = 200, **kw: Any
    ) -> httpx.Response:
        """A request of the setup, asserted to succeed."""
        extra = kw.pop("headers", {})
        response = await self.client.request(
            method, path, headers={**await self.headers(who), **extra}, **kw
        )
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response

    async def id_of(self, persona: str) -> str:
        if persona not in self._ids:
            self._ids[persona] = (await self.ok(persona, "GET", f"{API}/me")).json()["id"]
        return self._ids[persona]

    async def unit(self, code: str) -> str:
        if not self._units:
            admin = await self.auth("admin")
            response = await self.ok(admin, "GET", f"{API}/units")

            def walk(nodes: list[dict]) -> None:
                for node in nodes:
                    self._units[node["code"]] = node["id"]
                    walk(node["children"])

            walk(response.json())
        return self._units[code]

    async def file_record(self, who: str | dict = "cross13.police", **changes) -> httpx.Response:
        title = f"Signalement {uuid.uuid4().hex[:8]}"
        body = record_body(title, **changes)
        return await self.ok(who, "POST", f"{API}/records", 201, json=body)

    async def open_case(self, who: str | dict = "cross13.chef") -> httpx.Response:
        return await self.ok(who, "POST", f"{API}/cases", 201, **well_formed("case.create"))

    async def fresh_user(self, unit_code: str | None = "CROSS-13") -> tuple[str, dict, str]:
        """A new officer: (id, auth headers, username)."""
        user, password = await self.new_user(unit_code=unit_code)
        token = (await sign_in(self.client, user["username"], password))["access_token"]
        return user["id"], {"Authorization": f"Bearer {token}"}, user["username"]

    async def escalate(self, case_id: str, who: str = "cross13.chef") -> dict:
        path = f"{API}/cases/{case_id}/escalations"
        return (await self.ok(who, "POST", path, 201, **well_formed("case.escalate"))).json()

    async def new_client(self) -> dict:
        body = well_formed("client.create")
        body["json"]["unit_id"] = await self.unit("CROSS-59")
        return (await self.ok("admin", "POST", f"{API}/admin/clients", 201, **body)).json()

    async def phone_hit(self) -> tuple[str, str]:
        """cross13.police and cross59.douane file one fresh phone number, in two
        spellings: (the hit's id, the CROSS-59 record's id)."""
        number = mobile()
        phone = {"kind": "phone", "number": number}
        await self.file_record("cross13.police", entities=[phone])
        phone = {"kind": "phone", "number": "+33 6" + number[2:]}
        theirs = (await self.file_record("cross59.douane", entities=[phone])).json()
        hits = await self.ok(
            "cross59.douane", "GET", f"{API}/deconfliction/hits", params={"limit": 100}
        )
        [hit] = [h for h in hits.json()["items"] if h["mine"]["record_id"] == theirs["id"]]
        return hit["id"], theirs["id"]

    async def access_request(self) -> str:
        """cross13.police asks for the CROSS-59 record of a fresh hit: the request's id."""
        hit_id, _ = await self.phone_hit()
        path = f"{API}/deconfliction/hits/{hit_id}/access-requests"
        body = well_formed("hit.request_access")
        return (await self.ok("cross13.police", "POST", path, 201, **body)).json()["id"]

    async def new_exclusion(self) -> dict:
        body = well_formed("exclusion.create")
        path = f"{API}/admin/deconfliction/exclusions"
        return (await self.ok("admin", "POST", path, 201, **body)).json()

    async def new_operation(self) -> httpx.Response:
        body = well_formed("operation.create")
        return await self.ok("cross13.police", "POST", f"{API}/operations", 201, **body)

    async def new_unit(self) -> dict:
        body = well_formed("unit.create")
        body["json"]["parent_id"] = await self.unit("ANT-LYON")
        return (await self.ok("admin", "POST", f"{API}/admin/units", 201, **body)).json()


@pytest.fixture
def world(client, auth, settings, new_user) -> World:
    return World(client, auth, settings, new_user)


# --- 1. every route leaves its event ---------------------------------------------------


@dataclass
class Call:
    """A request that should succeed: who sends it (a persona, or headers of someone
    whose id is `actor_id`), what, and what it answers. `created` reads the id of the
    object it creates from the answer: the event's object."""

    who: str | dict[str, str]
    method: str
    path: str
    status: int = 200
    kwargs: dict[str, Any] = field(default_factory=dict)
    actor_id: str | None = None
    created: Callable[[dict], str] | None = None


Builder = Callable[[World], Awaitable[Call]]
SUCCESS: dict[str, Builder] = {}


def succeeds(name: str) -> Callable[[Builder], Builder]:
    """Register how to make a successful request of the route `name`."""

    def register(build: Builder) -> Builder:
        assert name not in SUCCESS, name
        SUCCESS[name] = build
        return build

    return register


def created_id(body: dict) -> str:
    return body["id"]


@succeeds("auth.me")
async def _auth_me(w: World) -> Call:
    return Call("cross13.police", "GET", f"{API}/me")


@succeeds("unit.tree")
async def _unit_tree(w: World) -> Call:
    return Call("cross13.police", "GET", f"{API}/units")


@succeeds("unit.read")
async def _unit_read(w: World) -> Call:
    return Call("cross13.police", "GET", f"{API}/units/{await w.unit('CROSS-13')}")


@succeeds("unit.create")
async def _unit_create(w: World) -> Call:
    body = well_formed("unit.create")
    body["json"]["parent_id"] = await w.unit("ANT-LYON")
    return Call("admin", "POST", f"{API}/admin/units", 201, body, created=created_id)


@succeeds("unit.update")
async def _unit_update(w: World) -> Call:
    unit = await w.new_unit()
    path = f"{API}/admin/units/{unit['id']}"
    return Call("admin", "PATCH", path, kwargs=well_formed("unit.update"))


@succeeds("user.list")
async def _user_list(w: World) -> Call:
    return Call("admin", "GET", f"{API}/admin/users")


@succeeds("user.create")
async def _user_create(w: World) -> Call:
    return Call(
        "admin", "POST", f"{API}/admin/users", 201, well_formed("user.create"), created=created_id
    )


@succeeds("user.update")
async def _user_update(w: World) -> Call:
    user, _ = await w.new_user()
    path = f"{API}/admin/users/{user['id']}"
    return Call("admin", "PATCH", path, kwargs={"json": {"is_active": False}})


@succeeds("user.membership.list")
async def _user_membership_list(w: World) -> Call:
    user, _ = await w.new_user()
    return Call("admin", "GET", f"{API}/admin/users/{user['id']}/memberships")


@succeeds("user.membership.put")
async def _user_membership_put(w: World) -> Call:
    user, _ = await w.new_user(unit_code=None)
    body = {"json": {"unit_id": await w.unit("CROSS-83"), "role": "officer"}}
    return Call("admin", "PUT", f"{API}/admin/users/{user['id']}/memberships", kwargs=body)


@succeeds("user.membership.remove")
async def _user_membership_remove(w: World) -> Call:
    user, _ = await w.new_user(unit_code="CROSS-13")
    path = f"{API}/admin/users/{user['id']}/memberships/{await w.unit('CROSS-13')}"
    return Call("admin", "DELETE", path, 204)


@succeeds("client.list")
async def _client_list(w: World) -> Call:
    return Call("admin", "GET", f"{API}/admin/clients")


@succeeds("client.create")
async def _client_create(w: World) -> Call:
    body = well_formed("client.create")
    body["json"]["unit_id"] = await w.unit("CROSS-59")
    return Call(
        "admin", "POST", f"{API}/admin/clients", 201, body, created=lambda b: b["client"]["id"]
    )


@succeeds("client.rotate")
async def _client_rotate(w: World) -> Call:
    made = await w.new_client()
    return Call("admin", "POST", f"{API}/admin/clients/{made['client']['id']}/rotate")


@succeeds("client.disable")
async def _client_disable(w: World) -> Call:
    made = await w.new_client()
    return Call("admin", "POST", f"{API}/admin/clients/{made['client']['id']}/disable")


@succeeds("record.create")
async def _record_create(w: World) -> Call:
    body = well_formed("record.create")
    return Call("cross13.police", "POST", f"{API}/records", 201, body, created=created_id)


@succeeds("record.search")
async def _record_search(w: World) -> Call:
    marker = "audit" + uuid.uuid4().hex[:8]
    await w.file_record(tags=[marker])
    return Call("cross13.police", "GET", f"{API}/records", kwargs={"params": {"q": marker}})


@succeeds("record.read")
async def _record_read(w: World) -> Call:
    record = (await w.file_record()).json()
    return Call("cross13.police", "GET", f"{API}/records/{record['id']}")


@succeeds("record.update")
async def _record_update(w: World) -> Call:
    filed = await w.file_record()
    kwargs = {"json": {"title": "Titre revu"}, "headers": {"If-Match": filed.headers["ETag"]}}
    return Call("cross13.police", "PATCH", f"{API}/records/{filed.json()['id']}", kwargs=kwargs)


@succeeds("record.history")
async def _record_history(w: World) -> Call:
    record = (await w.file_record()).json()
    return Call("cross13.police", "GET", f"{API}/records/{record['id']}/history")


@succeeds("record.attachment.upload")
async def _record_attachment_upload(w: World) -> Call:
    record = (await w.file_record()).json()
    path = f"{API}/records/{record['id']}/attachments"
    return Call("cross13.police", "POST", path, 201, well_formed("record.attachment.upload"))


@succeeds("record.attachment.download")
async def _record_attachment_download(w: World) -> Call:
    record = (await w.file_record()).json()
    path = f"{API}/records/{record['id']}/attachments"
    upload = well_formed("record.attachment.upload")
    attachment = (await w.ok("cross13.police", "POST", path, 201, **upload)).json()
    return Call("cross13.police", "GET", f"{path}/{attachment['id']}")


@succeeds("record.access_log")
async def _record_access_log(w: World) -> Call:
    record = (await w.file_record()).json()
    return Call("cross13.chef", "GET", f"{API}/records/{record['id']}/access-log")


@succeeds("record.review")
async def _record_review(w: World) -> Call:
    record = (await w.file_record()).json()
    path = f"{API}/records/{record['id']}/review"
    return Call("cross13.chef", "POST", path, kwargs=well_formed("record.review"))


@succeeds("review.list")
async def _review_list(w: World) -> Call:
    return Call("cross13.chef", "GET", f"{API}/reviews")


@succeeds("case.create")
async def _case_create(w: World) -> Call:
    body = well_formed("case.create")
    return Call("cross13.chef", "POST", f"{API}/cases", 201, body, created=created_id)


@succeeds("case.search")
async def _case_search(w: World) -> Call:
    return Call("cross13.chef", "GET", f"{API}/cases", kwargs={"params": {"status": "open"}})


@succeeds("case.read")
async def _case_read(w: World) -> Call:
    case = (await w.open_case()).json()
    return Call("cross13.chef", "GET", f"{API}/cases/{case['id']}")


@succeeds("case.update")
async def _case_update(w: World) -> Call:
    opened = await w.open_case()
    kwargs = {"json": {"summary": "Résumé revu"}, "headers": {"If-Match": opened.headers["ETag"]}}
    return Call("cross13.chef", "PATCH", f"{API}/cases/{opened.json()['id']}", kwargs=kwargs)


@succeeds("case.timeline")
async def _case_timeline(w: World) -> Call:
    case = (await w.open_case()).json()
    return Call("cross13.chef", "GET", f"{API}/cases/{case['id']}/timeline")


@succeeds("case.team.put")
async def _case_team_put(w: World) -> Call:
    case = (await w.open_case()).json()
    member, _, _ = await w.fresh_user()
    path = f"{API}/cases/{case['id']}/team/{member}"
    return Call("cross13.chef", "PUT", path, 204, well_formed("case.team.put"))


@succeeds("case.team.remove")
async def _case_team_remove(w: World) -> Call:
    case = (await w.open_case()).json()
    member, _, _ = await w.fresh_user()
    path = f"{API}/cases/{case['id']}/team/{member}"
    await w.ok("cross13.chef", "PUT", path, 204, **well_formed("case.team.put"))
    return Call("cross13.chef", "DELETE", path, 204)


@succeeds("case.record.link")
async def _case_record_link(w: World) -> Call:
    case = (await w.open_case()).json()
    record = (await w.file_record()).json()
    path = f"{API}/cases/{case['id']}/records"
    return Call("cross13.chef", "POST", path, 204, {"json": {"record_id": record["id"]}})


@succeeds("case.entity.add")
async def _case_entity_add(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/entities"
    return Call("cross13.chef", "POST", path, 201, well_formed("case.entity.add"))


@succeeds("case.task.add")
async def _case_task_add(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/tasks"
    return Call("cross13.chef", "POST", path, 201, well_formed("case.task.add"))


@succeeds("case.task.update")
async def _case_task_update(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/tasks"
    task = (await w.ok("cross13.chef", "POST", path, 201, **well_formed("case.task.add"))).json()
    return Call(
        "cross13.chef", "PATCH", f"{path}/{task['id']}", kwargs={"json": {"status": "done"}}
    )


@succeeds("case.note.add")
async def _case_note_add(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/notes"
    return Call("cross13.chef", "POST", path, 201, well_formed("case.note.add"))


@succeeds("case.drug_seizure.add")
async def _case_drug_seizure_add(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/seizures/drugs"
    return Call("cross13.chef", "POST", path, 201, well_formed("case.drug_seizure.add"))


@succeeds("case.asset_seizure.add")
async def _case_asset_seizure_add(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/seizures/assets"
    return Call("cross13.chef", "POST", path, 201, well_formed("case.asset_seizure.add"))


@succeeds("case.arrest.add")
async def _case_arrest_add(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/arrests"
    return Call("cross13.chef", "POST", path, 201, well_formed("case.arrest.add"))


@succeeds("case.close")
async def _case_close(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/close"
    return Call("cross13.chef", "POST", path, kwargs=well_formed("case.close"))


@succeeds("case.reopen")
async def _case_reopen(w: World) -> Call:
    case = (await w.open_case()).json()
    await w.ok(
        "cross13.chef", "POST", f"{API}/cases/{case['id']}/close", **well_formed("case.close")
    )
    return Call("cross13.chef", "POST", f"{API}/cases/{case['id']}/reopen")


@succeeds("case.escalate")
async def _case_escalate(w: World) -> Call:
    case = (await w.open_case()).json()
    path = f"{API}/cases/{case['id']}/escalations"
    return Call("cross13.chef", "POST", path, 201, well_formed("case.escalate"))


@succeeds("case.escalations")
async def _case_escalations(w: World) -> Call:
    case = (await w.open_case()).json()
    await w.escalate(case["id"])
    return Call("cross13.chef", "GET", f"{API}/cases/{case['id']}/escalations")


@succeeds("case.delegate")
async def _case_delegate(w: World) -> Call:
    case = (await w.open_case("ofast.chef")).json()
    body = {"json": {"to_unit_id": await w.unit("OFAST-RENSEIGNEMENT"), "note": "Exploitation"}}
    return Call("ofast.chef", "POST", f"{API}/cases/{case['id']}/delegate", kwargs=body)


@succeeds("escalation.queue")
async def _escalation_queue(w: World) -> Call:
    params = {"params": {"status": "pending"}}
    return Call("marseille.chef", "GET", f"{API}/escalations", kwargs=params)


@succeeds("escalation.read")
async def _escalation_read(w: World) -> Call:
    case = (await w.open_case()).json()
    escalation = await w.escalate(case["id"])
    return Call("cross13.chef", "GET", f"{API}/escalations/{escalation['id']}")


@succeeds("escalation.decide")
async def _escalation_decide(w: World) -> Call:
    case = (await w.open_case()).json()
    escalation = await w.escalate(case["id"])
    path = f"{API}/escalations/{escalation['id']}/decision"
    return Call("marseille.chef", "POST", path, kwargs=well_formed("escalation.decide"))


@succeeds("notification.list")
async def _notification_list(w: World) -> Call:
    return Call("cross13.chef", "GET", f"{API}/notifications")


@succeeds("notification.read_all")
async def _notification_read_all(w: World) -> Call:
    user_id, headers, _ = await w.fresh_user()
    return Call(headers, "POST", f"{API}/notifications/read-all", actor_id=user_id)


@succeeds("notification.read")
async def _notification_read(w: World) -> Call:
    user_id, headers, _ = await w.fresh_user()
    case = (await w.open_case()).json()
    task = {"json": {"title": "Audition du témoin", "assignee_id": user_id}}
    await w.ok("cross13.chef", "POST", f"{API}/cases/{case['id']}/tasks", 201, **task)
    mine = (await w.ok(headers, "GET", f"{API}/notifications")).json()["items"]
    assert mine, "the assignee was not notified"
    path = f"{API}/notifications/{mine[0]['id']}/read"
    return Call(headers, "POST", path, actor_id=user_id)


@succeeds("notification.stream")
async def _notification_stream(w: World) -> Call:
    """The stream ends when its token expires: a token of two seconds makes it finite."""
    user_id, _, _ = await w.fresh_user()
    short = w.settings.model_copy(update={"access_token_ttl_seconds": 2})
    token, _ = issue_access_token(short, f"user:{user_id}", "records:read records:write")
    return Call({"Authorization": f"Bearer {token}"}, "GET", f"{API}/events", actor_id=user_id)


@succeeds("audit.events")
async def _audit_events(w: World) -> Call:
    return Call("auditor", "GET", f"{API}/audit/events", kwargs={"params": {"limit": 1}})


@succeeds("audit.anomalies")
async def _audit_anomalies(w: World) -> Call:
    return Call("auditor", "GET", f"{API}/audit/anomalies")


@succeeds("hit.list")
async def _hit_list(w: World) -> Call:
    return Call("cross13.police", "GET", f"{API}/deconfliction/hits")


@succeeds("hit.read")
async def _hit_read(w: World) -> Call:
    hit_id, _ = await w.phone_hit()
    return Call("cross59.douane", "GET", f"{API}/deconfliction/hits/{hit_id}")


@succeeds("hit.request_access")
async def _hit_request_access(w: World) -> Call:
    hit_id, _ = await w.phone_hit()
    path = f"{API}/deconfliction/hits/{hit_id}/access-requests"
    return Call("cross13.police", "POST", path, 201, well_formed("hit.request_access"))


@succeeds("access_request.list")
async def _access_request_list(w: World) -> Call:
    return Call("cross13.police", "GET", f"{API}/deconfliction/access-requests")


@succeeds("access_request.decide")
async def _access_request_decide(w: World) -> Call:
    """A supervisor of CROSS-59 (a fresh one: the demo has none) decides."""
    request_id = await w.access_request()
    user, password = await w.new_user("douane", "CROSS-59", "supervisor")
    token = (await sign_in(w.client, user["username"], password))["access_token"]
    path = f"{API}/deconfliction/access-requests/{request_id}/decision"
    headers = {"Authorization": f"Bearer {token}"}
    return Call(
        headers, "POST", path, kwargs=well_formed("access_request.decide"), actor_id=user["id"]
    )


@succeeds("exclusion.list")
async def _exclusion_list(w: World) -> Call:
    return Call("admin", "GET", f"{API}/admin/deconfliction/exclusions")


@succeeds("exclusion.create")
async def _exclusion_create(w: World) -> Call:
    path = f"{API}/admin/deconfliction/exclusions"
    return Call("admin", "POST", path, 201, well_formed("exclusion.create"), created=created_id)


@succeeds("exclusion.delete")
async def _exclusion_delete(w: World) -> Call:
    exclusion = await w.new_exclusion()
    return Call("admin", "DELETE", f"{API}/admin/deconfliction/exclusions/{exclusion['id']}", 204)


@succeeds("operation.create")
async def _operation_create(w: World) -> Call:
    body = well_formed("operation.create")
    return Call("cross13.police", "POST", f"{API}/operations", 201, body, created=created_id)


@succeeds("operation.list")
async def _operation_list(w: World) -> Call:
    return Call("cross13.police", "GET", f"{API}/operations")


@succeeds("operation.read")
async def _operation_read(w: World) -> Call:
    operation = (await w.new_operation()).json()
    return Call("cross13.police", "GET", f"{API}/operations/{operation['id']}")


@succeeds("operation.update")
async def _operation_update(w: World) -> Call:
    made = await w.new_operation()
    kwargs = {"json": {"radius_m": 25}, "headers": {"If-Match": made.headers["ETag"]}}
    path = f"{API}/operations/{made.json()['id']}"
    return Call("cross13.police", "PATCH", path, kwargs=kwargs)


@succeeds("operation.cancel")
async def _operation_cancel(w: World) -> Call:
    operation = (await w.new_operation()).json()
    return Call("cross13.police", "POST", f"{API}/operations/{operation['id']}/cancel")


def test_every_protected_route_is_named_and_in_the_table(app):
    """Every route under /api/v1 outside the public list has a dotted name `object.verb`
    (its audit action), and the table of successful requests covers exactly them: a new
    route without an entry fails here."""
    names = set(protected_routes(app))
    assert len(names) >= 50, "the walk does not see the API"
    assert sorted(n for n in names if not DOTTED.fullmatch(n)) == []
    assert sorted(names - SUCCESS.keys()) == [], "routes without an entry in SUCCESS"
    assert sorted(SUCCESS.keys() - names) == [], "entries in SUCCESS for no route"


@pytest.mark.parametrize("name", sorted(SUCCESS))
async def test_a_successful_request_leaves_its_event(name, app, world, db):
    """The request succeeds and leaves exactly one event named after its route: outcome
    success, its status, the caller as actor, the object its path names (or creates).
    Other events of the request (grants, hits a filing raises) are named after no route."""
    routes = protected_routes(app)
    route = routes[name]
    call = await SUCCESS[name](world)
    assert call.method in route.methods, f"{call.method} is not a method of {name}"
    params = path_params(route.path, call.path)
    kwargs = dict(call.kwargs)
    headers = {**await world.headers(call.who), **kwargs.pop("headers", {})}
    response, request_id = await send(
        world.client, call.method, call.path, headers=headers, **kwargs
    )
    assert response.status_code == call.status, response.text

    events = await events_of(db, request_id)
    assert [e for e in events if e["action"] in routes and e["action"] != name] == []
    [event] = [e for e in events if e["action"] == name]
    assert all(e["outcome"] == "success" for e in events), events
    assert event["status"] == response.status_code
    assert event["actor_kind"] == "user"
    actor_id = call.actor_id or await world.id_of(call.who)
    assert event["actor_id"] == actor_id
    expected_object = named_object(name, params)
    if call.created is not None:
        expected_object = call.created(response.json())
    if expected_object is not None:
        assert event["object_id"] == expected_object
        assert event["object_type"] == name.split(".")[0]


async def test_a_hidden_or_forbidden_object_leaves_a_denied_event(app, world, db):
    """For every route whose path names objects: random ids, asked by a persona who
    cannot see them (404) or may not act (403, admin routes), leave a `denied` event with
    that status, the caller, and the object the path named."""
    persona = "cross13.police"
    headers = await world.auth(persona)
    actor_id = await world.id_of(persona)
    checked = 0
    for name, route in sorted(protected_routes(app).items()):
        if not PARAM.search(route.path):
            continue
        method = sorted(route.methods - {"HEAD"})[0]
        path, params = random_path(route.path)
        kwargs = well_formed(name)
        response, request_id = await send(
            world.client,
            method,
            path,
            headers={**headers, **kwargs.pop("headers", {})},
            **kwargs,
        )
        expected = 403 if route.path.startswith(f"{API}/admin/") else 404
        assert response.status_code == expected, f"{name}: {response.text}"
        event = await the_event(db, request_id)
        assert event["action"] == name
        assert (event["outcome"], event["status"]) == ("denied", expected), name
        assert (event["actor_kind"], event["actor_id"]) == ("user", actor_id), name
        assert event["object_id"] == named_object(name, params), name
        checked += 1
    assert checked >= 35


async def test_a_request_without_a_token_leaves_an_anonymous_denied_event(app, client, db):
    """Every protected route answers 401 without a token, and leaves a `denied` event of
    an anonymous actor with status 401 and the object the path named."""
    for name, route in sorted(protected_routes(app).items()):
        method = sorted(route.methods - {"HEAD"})[0]
        path, params = random_path(route.path)
        kwargs = well_formed(name)
        response, request_id = await send(client, method, path, **kwargs)
        assert response.status_code == 401, f"{name}: {response.text}"
        event = await the_event(db, request_id)
        assert event["action"] == name
        assert (event["outcome"], event["status"]) == ("denied", 401), name
        assert (event["actor_kind"], event["actor_id"]) == ("anonymous", None), name
        assert event["object_id"] == named_object(name, params), name


# --- 2. the event commits with the work, and only with it ------------------------------


async def test_a_stale_if_match_leaves_no_success_event(world, db):
    """PATCH with the ETag of an earlier version: 412, the record unchanged, no success
    event for the request."""
    filed = await world.file_record()
    record_id, etag = filed.json()["id"], filed.headers["ETag"]
    path = f"{API}/records/{record_id}"
    await world.ok(
        "cross13.police",
        "PATCH",
        path,
        json={"title": "Première révision"},
        headers={"If-Match": etag},
    )
    headers = {**await world.auth("cross13.police"), "If-Match": etag}
    response, request_id = await send(
        world.client, "PATCH", path, headers=headers, json={"title": "Révision perdue"}
    )
    assert response.status_code == 412, response.text
    assert [e for e in await events_of(db, request_id) if e["outcome"] == "success"] == []
    record = (await world.ok("cross13.police", "GET", path)).json()
    assert (record["version"], record["title"]) == (2, "Première révision")


async def test_a_validation_error_after_changes_leaves_no_success_event(world, db):
    """PATCH handling_code H3 without a note: the service changes the record, then
    refuses (422); the change and its event are both rolled back."""
    filed = await world.file_record()
    path = f"{API}/records/{filed.json()['id']}"
    headers = {**await world.auth("cross13.police"), "If-Match": filed.headers["ETag"]}
    response, request_id = await send(
        world.client, "PATCH", path, headers=headers, json={"handling_code": "H3"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "handling_note"]
    assert [e for e in await events_of(db, request_id) if e["outcome"] == "success"] == []
    record = (await world.ok("cross13.police", "GET", path)).json()
    assert (record["version"], record["handling_code"]) == (1, "H0")


async def test_a_conflict_after_an_insert_leaves_no_success_event(world, db):
    """Creating a user under a taken name: the insert is tried, then refused (409); no
    `user.create` success event."""
    user, _ = await world.new_user(unit_code=None)
    body = well_formed("user.create")
    body["json"]["username"] = user["username"]
    response, request_id = await send(
        world.client, "POST", f"{API}/admin/users", headers=await world.auth("admin"), **body
    )
    assert response.status_code == 409, response.text
    assert [e for e in await events_of(db, request_id) if e["outcome"] == "success"] == []


async def sign_in_as(client, username: str, password: str) -> tuple[httpx.Response, str]:
    return await send(
        client,
        "POST",
        f"{API}/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )


async def test_sign_in_success_and_failure_are_audited(world, db):
    """A sign-in leaves `auth.sign_in` success with the user as actor and object; a wrong
    password leaves `auth.sign_in` failure, reason wrong_password; an unknown name leaves
    a failure of an anonymous actor carrying the name tried."""
    user, password = await world.new_user()
    response, request_id = await sign_in_as(world.client, user["username"], password)
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"]) == ("auth.sign_in", "success")
    assert (event["actor_kind"], event["actor_id"]) == ("user", user["id"])
    assert (event["object_type"], event["object_id"]) == ("user", user["id"])

    response, request_id = await sign_in_as(world.client, user["username"], "wrong-password!")
    assert response.status_code == 400, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"]) == ("auth.sign_in", "failure")
    assert event["actor_id"] == user["id"]
    assert event["details"]["reason"] == "wrong_password"

    nobody = f"nobody.{uuid.uuid4().hex[:8]}"
    response, request_id = await sign_in_as(world.client, nobody, "whatever-password")
    assert response.status_code == 400, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"]) == ("auth.sign_in", "failure")
    assert (event["actor_kind"], event["actor_id"], event["actor_name"]) == (
        "anonymous",
        None,
        nobody,
    )


async def test_a_failed_sign_in_event_records_the_status_answered(world, db):
    """The event's `status` is the HTTP status of the answer, as for every other event:
    a wrong password is answered 400 and a wrong client secret 401; their `failure`
    events must not say 200."""
    user, _ = await world.new_user()
    response, request_id = await sign_in_as(world.client, user["username"], "wrong-password!")
    assert response.status_code == 400, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"]) == ("auth.sign_in", "failure")
    assert event["status"] == response.status_code

    made = await world.new_client()
    form = {
        "grant_type": "client_credentials",
        "client_id": made["client"]["client_id"],
        "client_secret": "not-the-secret",
    }
    response, request_id = await send(world.client, "POST", f"{API}/auth/token", data=form)
    assert response.status_code == 401, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"]) == ("auth.client_sign_in", "failure")
    assert event["status"] == response.status_code


async def test_lockout_is_audited(world, db, settings):
    """The failure that reaches the lockout threshold leaves, besides its `auth.sign_in`
    failure, an `auth.lockout` event on the user, with the time the lock ends."""
    user, _ = await world.new_user()
    for attempt in range(1, settings.lockout_threshold + 1):
        response, request_id = await sign_in_as(world.client, user["username"], "wrong-password!")
        assert response.status_code == 400, response.text
        events = await events_of(db, request_id)
        lockouts = [e for e in events if e["action"] == "auth.lockout"]
        assert len(lockouts) == (1 if attempt == settings.lockout_threshold else 0), events
    [failure] = [e for e in events if e["action"] == "auth.sign_in"]
    assert (failure["outcome"], failure["details"]["reason"]) == ("failure", "wrong_password")
    [lockout] = lockouts
    assert lockout["outcome"] == "success"
    assert (lockout["actor_id"], lockout["object_type"], lockout["object_id"]) == (
        user["id"],
        "user",
        user["id"],
    )
    assert datetime.fromisoformat(lockout["details"]["until"]) > datetime.now(UTC)


async def test_refresh_token_reuse_is_audited(world, db):
    """A refresh leaves `auth.refresh` success; presenting the used refresh token again
    leaves `auth.refresh` failure whose reason says it was reused."""
    user, password = await world.new_user()
    first = await sign_in(world.client, user["username"], password)
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    response, request_id = await send(world.client, "POST", f"{API}/auth/token", data=form)
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"], event["actor_id"]) == (
        "auth.refresh",
        "success",
        user["id"],
    )

    response, request_id = await send(world.client, "POST", f"{API}/auth/token", data=form)
    assert response.status_code == 400, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"], event["actor_id"]) == (
        "auth.refresh",
        "failure",
        user["id"],
    )
    assert "reuse" in event["details"]["reason"]


async def test_admin_changes_are_audited(world, db):
    """Creating and disabling an account leave `user.create` and `user.update` events by
    the admin, on the account, saying what changed (never the password)."""
    admin_id = await world.id_of("admin")
    body = well_formed("user.create")
    response, request_id = await send(
        world.client, "POST", f"{API}/admin/users", headers=await world.auth("admin"), **body
    )
    assert response.status_code == 201, response.text
    user_id = response.json()["id"]
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"], event["actor_id"]) == (
        "user.create",
        "success",
        admin_id,
    )
    assert (event["object_type"], event["object_id"]) == ("user", user_id)
    assert event["details"]["username"] == body["json"]["username"]
    assert body["json"]["password"] not in json.dumps(event["details"])

    response, request_id = await send(
        world.client,
        "PATCH",
        f"{API}/admin/users/{user_id}",
        headers=await world.auth("admin"),
        json={"is_active": False},
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["actor_id"], event["object_id"]) == (
        "user.update",
        admin_id,
        user_id,
    )
    assert event["details"]["active"] is False


# --- 3. append-only --------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "update audit_events set outcome = 'success' where id = (select max(id) from audit_events)",
        "delete from audit_events where id = (select max(id) from audit_events)",
        "truncate audit_events",
    ],
    ids=["update", "delete", "truncate"],
)
async def test_the_trail_is_append_only_even_for_its_owner(db, statement):
    """UPDATE, DELETE and TRUNCATE are refused by PostgreSQL, though the test connects as
    a superuser owning the table (each attempt is rolled back whatever happens)."""
    async with db.sessionmaker() as session:
        try:
            role = (
                await session.execute(
                    text(
                        "select r.rolsuper, t.tableowner = current_user as owner "
                        "from pg_roles r, pg_tables t "
                        "where r.rolname = current_user and t.tablename = 'audit_events'"
                    )
                )
            ).one()
            assert role.rolsuper or role.owner
            assert await session.scalar(text("select count(*) from audit_events")) > 0
            await session.execute(text("set local lock_timeout = '10s'"))
            with pytest.raises(DBAPIError, match="append-only"):
                await session.execute(text(statement))
        finally:
            await session.rollback()


# --- 4. tamper evidence ----------------------------------------------------------------


def scratch_event(n: int, **changes: Any) -> dict[str, Any]:
    """The columns of an event as a service would give them (chains come on writing)."""
    event = {
        "actor_kind": "user",
        "actor_id": uuid.uuid4(),
        "actor_name": f"agent{n}",
        "agency": "police",
        "unit_id": None,
        "action": "record.read",
        "object_type": "record",
        "object_id": str(uuid.uuid4()),
        "outcome": "success",
        "status": 200,
        "purpose": None,
        "request_id": f"scratch-{n}",
        "ip": "10.0.0.1",
        "user_agent": "test",
        "details": {"n": n},
    }
    event.update(changes)
    return event


@pytest.fixture
async def scratch(scratch_url: str) -> AsyncIterator[Database]:
    """A scratch database migrated to head, holding 12 events written in 4 transactions
    of 3 (each transaction writes to one chain)."""
    await migrate_async(scratch_url)
    database = Database(scratch_url, pool_size=2)
    try:
        for batch in range(4):
            await write_events(database, [scratch_event(batch * 3 + i) for i in range(3)])
        yield database
    finally:
        await database.dispose()


async def write_events(database: Database, events: list[dict[str, Any]]) -> None:
    async with database.sessionmaker() as session, session.begin():
        await audit.append(session, SCRATCH_KEY.encode(), events)


async def scratch_rows(database: Database) -> list[dict[str, Any]]:
    async with database.sessionmaker() as session:
        rows = await session.execute(
            text("select id, chain, chain_seq, action, hash, at from audit_events order by id")
        )
        return [dict(r) for r in rows.mappings()]


async def a_chain(database: Database) -> list[dict[str, Any]]:
    """The rows of the chain of the first event, in order (at least 3)."""
    rows = await scratch_rows(database)
    chain = [r for r in rows if r["chain"] == rows[0]["chain"]]
    chain.sort(key=lambda r: r["chain_seq"])
    assert len(chain) >= 3 and [r["chain_seq"] for r in chain] == list(range(1, len(chain) + 1))
    return chain


@contextlib.asynccontextmanager
async def tampering(database: Database) -> AsyncIterator[Any]:
    """A transaction with the append-only trigger bypassed, as a DBA could; rolled back
    at the end, so each test's manipulation leaves the scratch trail as it was."""
    async with database.sessionmaker() as session:
        try:
            await session.execute(text("set local session_replication_role = replica"))
            yield session
        finally:
            await session.rollback()


async def verify(session, key: str = SCRATCH_KEY) -> tuple[int, audit.Breach | None]:
    return await audit.verify(session, key.encode())


async def test_verify_an_intact_trail(scratch):
    """An intact trail verifies: every event counted, no breach; under another key the
    very first event of a chain fails (the seal is keyed)."""
    async with scratch.sessionmaker() as session:
        assert await verify(session) == (12, None)
        checked, breach = await verify(session, "not-the-audit-key-0123456789abcdef")
    assert checked == 1 and breach is not None
    assert breach.seq == 1 and "altered" in breach.problem


async def test_verify_names_an_altered_event(scratch):
    """A row whose column was changed: verify names that event and says altered."""
    chain = await a_chain(scratch)
    target = chain[1]
    async with tampering(scratch) as session:
        await session.execute(
            text("update audit_events set outcome = 'denied' where id = :id"), {"id": target["id"]}
        )
        checked, breach = await verify(session)
        assert breach is not None
        assert (breach.event_id, breach.chain, breach.seq) == (target["id"], target["chain"], 2)
        assert "altered" in breach.problem and f"event {target['id']}" in str(breach)
    async with scratch.sessionmaker() as session:
        assert await verify(session) == (12, None)


async def test_verify_names_a_removal_in_the_middle_of_a_chain(scratch):
    """A row deleted in the middle of a chain: verify names the next row, found at a
    position past its place, and says events before it were removed."""
    chain = await a_chain(scratch)
    async with tampering(scratch) as session:
        await session.execute(
            text("delete from audit_events where id = :id"), {"id": chain[1]["id"]}
        )
        _, breach = await verify(session)
        assert breach is not None
        assert (breach.event_id, breach.chain, breach.seq) == (chain[2]["id"], chain[0]["chain"], 2)
        assert "removed" in breach.problem
    async with scratch.sessionmaker() as session:
        assert await verify(session) == (12, None)


async def test_verify_catches_a_forged_event_at_the_end_of_a_chain(scratch):
    """A row appended after a chain's last one, sealing its predecessor's hash in
    `prev_hash`, with the chain's head moved to it: without the key its own seal cannot
    be right, and verify names it."""
    chain = await a_chain(scratch)
    last = chain[-1]
    forged_hash = os.urandom(32)
    async with tampering(scratch) as session:
        forged = await session.scalar(
            text(
                "insert into audit_events (chain, chain_seq, prev_hash, hash, at, actor_kind, "
                "actor_id, actor_name, agency, unit_id, action, object_type, object_id, "
                "outcome, status, purpose, request_id, ip, user_agent, details) "
                "select chain, chain_seq + 1, hash, :forged, at + interval '1 second', "
                "actor_kind, actor_id, 'someone else', agency, unit_id, action, object_type, "
                "object_id, outcome, status, purpose, 'forged', ip, user_agent, details "
                "from audit_events where id = :last returning id"
            ),
            {"forged": forged_hash, "last": last["id"]},
        )
        await session.execute(
            text("update audit_chains set seq = seq + 1, hash = :forged where chain = :chain"),
            {"forged": forged_hash, "chain": last["chain"]},
        )
        _, breach = await verify(session)
        assert breach is not None
        assert (breach.event_id, breach.chain) == (forged, last["chain"])
        assert breach.seq == last["chain_seq"] + 1
        assert "forged" in breach.problem
    async with scratch.sessionmaker() as session:
        assert await verify(session) == (12, None)


async def test_verify_catches_the_removal_of_a_chains_last_event(scratch):
    """The last row of a chain deleted: every remaining row seals, but the chain's head
    names one event more, and verify says events were removed from the chain's end."""
    chain = await a_chain(scratch)
    async with tampering(scratch) as session:
        await session.execute(
            text("delete from audit_events where id = :id"), {"id": chain[-1]["id"]}
        )
        _, breach = await verify(session)
        assert breach is not None
        assert (breach.chain, breach.seq, breach.event_id) == (
            chain[0]["chain"],
            len(chain) - 1,
            None,
        )
        assert "removed" in breach.problem
    async with scratch.sessionmaker() as session:
        assert await verify(session) == (12, None)


async def test_verify_judges_one_state_while_requests_write(scratch, scratch_url):
    """On a live trail, requests keep committing events while verify walks the chains
    (`crossintel audit verify` runs next to the server). An event committed once verify
    has read the chains' heads, to a chain it has not walked yet, is no breach: the trail
    is intact before and after it, and verify must judge one consistent state."""
    fired = []

    def commit_an_event_elsewhere() -> None:
        """What a request does meanwhile: append one event, to the last chain (every
        other chain is held), and commit — on connections of its own."""

        async def main() -> None:
            other = Database(scratch_url, pool_size=2)
            try:
                async with other.sessionmaker() as holder, other.sessionmaker() as writer:
                    await holder.execute(
                        text(
                            "select chain from audit_chains where chain <> "
                            "(select max(chain) from audit_chains) for update"
                        )
                    )
                    async with writer.begin():
                        await audit.append(writer, SCRATCH_KEY.encode(), [scratch_event(99)])
                    await holder.rollback()
            finally:
                await other.dispose()

        asyncio.run(main())

    def once_the_walk_starts(conn, cursor, statement, parameters, context, executemany):
        if not fired and "FROM audit_events" in statement and "chain_seq >" in statement:
            fired.append(statement)
            writer = threading.Thread(target=commit_an_event_elsewhere)
            writer.start()
            writer.join()

    engine = scratch.engine.sync_engine
    event.listen(engine, "before_cursor_execute", once_the_walk_starts)
    try:
        async with scratch.sessionmaker() as session:
            checked, breach = await verify(session)
    finally:
        event.remove(engine, "before_cursor_execute", once_the_walk_starts)
    assert fired, "verify never walked a chain"
    async with scratch.sessionmaker() as session:
        assert await verify(session) == (13, None)  # the trail is intact afterwards
    assert breach is None, f"an intact trail reported broken: {breach}"
    assert checked in (12, 13)


async def test_cli_verify_exits_1_naming_the_altered_event(scratch, scratch_url, tmp_path):
    """`crossintel audit verify`: exit 0 on the intact trail; once a row is altered (and
    committed), exit 1 with the event named on stderr."""
    code, out, err = await run_cli(
        scratch_url, tmp_path, "audit", "verify", env=SCRATCH_ENV, wait=TIMEOUT
    )
    assert code == 0, err
    assert "audit trail intact: 12 events verified" in out

    target = (await a_chain(scratch))[1]
    async with scratch.sessionmaker() as session, session.begin():
        await session.execute(text("set local session_replication_role = replica"))
        await session.execute(
            text("update audit_events set actor_name = 'someone else' where id = :id"),
            {"id": target["id"]},
        )
    code, out, err = await run_cli(
        scratch_url, tmp_path, "audit", "verify", env=SCRATCH_ENV, wait=TIMEOUT
    )
    assert code == 1, (out, err)
    assert "audit trail broken" in err and f"event {target['id']} " in err, err


async def test_cli_export_prints_the_events_of_the_period(scratch, scratch_url, tmp_path):
    """`crossintel audit export --since T` prints one JSON line per event from T on, in
    order, with the ids, actions, chain positions and hashes of the rows."""
    cut = datetime.now(UTC)
    await write_events(scratch, [scratch_event(100 + i, action="case.read") for i in range(2)])
    await write_events(scratch, [scratch_event(200, action="record.search")])
    expected = [r for r in await scratch_rows(scratch) if r["at"] >= cut]
    assert len(expected) == 3

    code, out, err = await run_cli(
        scratch_url, tmp_path, "audit", "export", "--since", str(cut), env=SCRATCH_ENV, wait=TIMEOUT
    )
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(e["id"], e["action"], e["chain"], e["chain_seq"], e["hash"]) for e in lines] == [
        (r["id"], r["action"], r["chain"], r["chain_seq"], r["hash"].hex()) for r in expected
    ]
    assert "3 events exported" in err


# --- 5. concurrency --------------------------------------------------------------------


async def test_concurrent_requests_all_leave_their_events(client, auth, db, settings):
    """20 requests at once (successes and denials, from several personas) each leave
    their event; the events spread over several chains, and the trail still verifies."""
    personas = ["cross13.police", "cross13.chef", "marseille.chef", "cross83.police"]
    headers = {p: await auth(p) for p in personas}
    requests = []
    for i in range(20):
        who = personas[i % len(personas)]
        if i % 5 == 4:
            requests.append((who, f"{API}/records/{uuid.uuid4()}", "denied"))
        else:
            requests.append((who, f"{API}/me" if i % 2 else f"{API}/units", "success"))
    answers = await asyncio.gather(
        *(send(client, "GET", path, headers=headers[who]) for who, path, _ in requests)
    )
    chains = set()
    for (_, path, outcome), (response, request_id) in zip(requests, answers, strict=True):
        assert response.status_code == (404 if outcome == "denied" else 200), response.text
        event = await the_event(db, request_id)
        assert event["outcome"] == outcome, path
        chains.add(event["chain"])
    assert len(chains) > 1
    async with db.sessionmaker() as session:
        checked, breach = await audit.verify(
            session, settings.audit_key.get_secret_value().encode()
        )
    assert breach is None, str(breach)
    assert checked >= 20


# --- 6. purpose of access --------------------------------------------------------------


async def file_with_email(world: World) -> tuple[str, str]:
    """A record naming an e-mail address of its own: (record id, address)."""
    address = f"guetteur.{uuid.uuid4().hex[:10]}@example.fr"
    filed = await world.file_record(entities=[{"kind": "email", "address": address}])
    return filed.json()["id"], address


async def search_selector(world: World, selector: str, persona="cross13.police", **kw):
    headers = {**await world.auth(persona), **kw.pop("headers", {})}
    params = {"selector": selector, **kw.pop("params", {})}
    return await send(world.client, "GET", f"{API}/records", headers=headers, params=params)


async def test_selector_search_without_purpose_is_428_and_denied(world, db):
    """A selector search without a purpose: 428 `purpose_required`, and a denied event."""
    _, address = await file_with_email(world)
    response, request_id = await search_selector(world, address)
    assert response.status_code == 428, response.text
    assert response.json()["code"] == "purpose_required"
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"], event["status"]) == ("record.search", "denied", 428)
    assert event["actor_id"] == await world.id_of("cross13.police")


async def test_selector_search_with_a_justification(world, db):
    """With `X-Purpose: <justification>`: 200, the record found, and the event holds the
    purpose, purpose_kind `justification`, the selector searched and the count."""
    record_id, address = await file_with_email(world)
    response, request_id = await search_selector(
        world, address, headers={"X-Purpose": JUSTIFICATION}
    )
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["items"]] == [record_id]
    event = await the_event(db, request_id)
    assert (event["outcome"], event["purpose"]) == ("success", JUSTIFICATION)
    assert event["details"]["purpose_kind"] == "justification"
    assert event["details"]["query"]["selector"] == address
    assert event["details"]["results"] == 1


async def test_a_short_justification_is_422_on_the_header(world, db):
    """A justification under 10 characters: 422 naming ["header", "X-Purpose"], and no
    success event."""
    _, address = await file_with_email(world)
    response, request_id = await search_selector(world, address, headers={"X-Purpose": "enquete"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["header", "X-Purpose"]
    assert [e for e in await events_of(db, request_id) if e["outcome"] == "success"] == []


async def test_a_visible_case_reference_as_purpose(world, db):
    """The reference of a case the caller sees: purpose_kind `case` and the case's id."""
    case = (await world.open_case("cross13.chef")).json()
    _, address = await file_with_email(world)
    response, request_id = await search_selector(
        world, address, "cross13.chef", headers={"X-Purpose": case["reference"]}
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert event["purpose"] == case["reference"]
    assert event["details"]["purpose_kind"] == "case"
    assert event["details"]["purpose_case_id"] == case["id"]


async def test_the_reference_of_a_case_out_of_sight_is_422(world, db):
    """The reference of another unit's case (or of no case): 422 on the header."""
    elsewhere = (await world.open_case("cross83.police")).json()
    _, address = await file_with_email(world)
    for reference in (elsewhere["reference"], "CROSS13-1999-9999"):
        response, request_id = await search_selector(
            world, address, "cross13.chef", headers={"X-Purpose": reference}
        )
        assert response.status_code == 422, (reference, response.text)
        assert response.json()["errors"][0]["loc"] == ["header", "X-Purpose"]
        assert [e for e in await events_of(db, request_id) if e["outcome"] == "success"] == []


async def test_the_purpose_query_parameter_works_like_the_header(world, db):
    """`?purpose=` is taken as the header is: stored, checked (short: 422)."""
    record_id, address = await file_with_email(world)
    response, request_id = await search_selector(world, address, params={"purpose": JUSTIFICATION})
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["items"]] == [record_id]
    event = await the_event(db, request_id)
    assert (event["purpose"], event["details"]["purpose_kind"]) == (JUSTIFICATION, "justification")

    response, _ = await search_selector(world, address, params={"purpose": "court"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["header", "X-Purpose"]


async def test_a_percent_encoded_purpose_is_stored_decoded(world, db):
    """Header values are ASCII: UTF-8 is sent percent-encoded and stored decoded."""
    _, address = await file_with_email(world)
    response, request_id = await search_selector(
        world, address, headers={"X-Purpose": "V%C3%A9rification d%27un r%C3%A9seau"}
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert event["purpose"] == "Vérification d'un réseau"
    assert event["details"]["purpose_kind"] == "justification"


async def test_person_search_needs_a_purpose(world, db):
    """`person=Surname, Given`: 428 without a purpose, 200 with one, and the event holds
    the person searched."""
    surname = "Zorglub" + "".join(chr(ord("a") + int(c, 16) % 26) for c in uuid.uuid4().hex[:8])
    person = {"kind": "person", "surname": surname, "given_names": "Jean"}
    record_id = (await world.file_record(entities=[person])).json()["id"]
    headers = await world.auth("cross13.police")
    params = {"person": f"{surname}, Jean"}
    response, request_id = await send(
        world.client, "GET", f"{API}/records", headers=headers, params=params
    )
    assert response.status_code == 428, response.text
    assert (await the_event(db, request_id))["outcome"] == "denied"

    response, request_id = await send(
        world.client,
        "GET",
        f"{API}/records",
        headers={**headers, "X-Purpose": JUSTIFICATION},
        params=params,
    )
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["items"]] == [record_id]
    event = await the_event(db, request_id)
    assert event["details"]["query"]["person"] == f"{surname}, Jean"
    assert event["details"]["purpose_kind"] == "justification"


async def test_a_read_through_a_case_grant_needs_a_purpose(world, db):
    """A CROSS-13 record linked to a case escalated to and accepted by ANT-MARSEILLE:
    marseille.chef reads it through the grant, which needs a purpose (428 without, a
    denied event on the record); its author reads it without one."""
    record_id = (await world.file_record("cross13.police")).json()["id"]
    case = (await world.open_case("cross13.chef")).json()
    await world.ok(
        "cross13.chef",
        "POST",
        f"{API}/cases/{case['id']}/records",
        204,
        json={"record_id": record_id},
    )
    escalation = await world.escalate(case["id"])
    await world.ok(
        "marseille.chef",
        "POST",
        f"{API}/escalations/{escalation['id']}/decision",
        json={"decision": "accept", "note": "Pris en charge"},
    )
    path = f"{API}/records/{record_id}"
    marseille = await world.auth("marseille.chef")

    response, request_id = await send(world.client, "GET", path, headers=marseille)
    assert response.status_code == 428, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"], event["status"]) == ("record.read", "denied", 428)
    assert event["object_id"] == record_id

    response, request_id = await send(
        world.client, "GET", path, headers={**marseille, "X-Purpose": case["reference"]}
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert event["outcome"] == "success" and event["details"]["through_grant"] is True
    assert (event["details"]["purpose_kind"], event["details"]["purpose_case_id"]) == (
        "case",
        case["id"],
    )

    response, request_id = await send(
        world.client, "GET", path, headers=await world.auth("cross13.police")
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert (event["purpose"], event["details"]["through_grant"]) == (None, False)


# --- 7. the auditors' endpoints --------------------------------------------------------


@pytest.mark.parametrize("persona", ["cross13.chef", "admin", "ofast.chef"])
async def test_only_auditors_read_the_trail(world, db, persona):
    """Anyone but an auditor: 403, and the refusal is itself a denied event."""
    response, request_id = await send(
        world.client, "GET", f"{API}/audit/events", headers=await world.auth(persona)
    )
    assert response.status_code == 403, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"], event["status"]) == ("audit.events", "denied", 403)
    assert event["actor_id"] == await world.id_of(persona)


@dataclass
class Activity:
    """What a fresh user did: request ids by step, the record filed, the user's id."""

    user_id: str
    record_id: str
    steps: dict[str, str]


@pytest.fixture
async def activity(world) -> Activity:
    """A fresh officer signs in, then: me, me, units, files a record, reads it, searches,
    asks for a record that does not exist (404), and for the user list (403)."""
    user, password = await world.new_user()
    steps = {}
    response, steps["sign_in"] = await sign_in_as(world.client, user["username"], password)
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    record = well_formed("record.create")
    plan = [
        ("me1", "GET", f"{API}/me", {}),
        ("me2", "GET", f"{API}/me", {}),
        ("units", "GET", f"{API}/units", {}),
        ("file", "POST", f"{API}/records", record),
    ]
    answers = {}
    for step, method, path, kwargs in plan:
        answers[step], steps[step] = await send(
            world.client, method, path, headers=headers, **kwargs
        )
    record_id = answers["file"].json()["id"]
    later = [
        ("read", "GET", f"{API}/records/{record_id}", {}),
        ("search", "GET", f"{API}/records", {"params": {"q": "cocaïne"}}),
        ("missing", "GET", f"{API}/records/{uuid.uuid4()}", {}),
        ("forbidden", "GET", f"{API}/admin/users", {}),
    ]
    for step, method, path, kwargs in later:
        answers[step], steps[step] = await send(
            world.client, method, path, headers=headers, **kwargs
        )
    statuses = {step: r.status_code for step, r in answers.items()}
    assert statuses == {
        "me1": 200,
        "me2": 200,
        "units": 200,
        "file": 201,
        "read": 200,
        "search": 200,
        "missing": 404,
        "forbidden": 403,
    }
    return Activity(user["id"], record_id, steps)


async def trail(world: World, **params: Any) -> list[dict[str, Any]]:
    """GET /audit/events as the auditor, every page."""
    items, cursor = [], None
    while True:
        page_params = {**params, **({"cursor": cursor} if cursor else {})}
        page = await world.ok("auditor", "GET", f"{API}/audit/events", params=page_params)
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def steps_of(activity: Activity, items: list[dict]) -> list[str]:
    """The steps the listed events belong to, in the listed order."""
    by_request = {rid: step for step, rid in activity.steps.items()}
    return [by_request.get(e["request_id"], e["request_id"]) for e in items]


async def test_auditor_filters_by_actor(world, activity):
    """actor_id: exactly the user's events, newest first, each step once."""
    items = await trail(world, actor_id=activity.user_id)
    assert steps_of(activity, items) == list(reversed(activity.steps))
    assert [e["id"] for e in items] == sorted((e["id"] for e in items), reverse=True)
    assert all(e["actor_id"] == activity.user_id for e in items)


async def test_auditor_filters_by_action(world, activity):
    """action: exact (`auth.me`), or every action of an object with a prefix (`record.`)."""
    exact = await trail(world, actor_id=activity.user_id, action="auth.me")
    assert steps_of(activity, exact) == ["me2", "me1"]
    prefix = await trail(world, actor_id=activity.user_id, action="record.")
    assert steps_of(activity, prefix) == ["missing", "search", "read", "file"]
    assert await trail(world, actor_id=activity.user_id, action="record") == []


async def test_auditor_filters_by_outcome_and_object(world, activity):
    """outcome=denied: the 404 and the 403; object_id: the record's own events."""
    denied = await trail(world, actor_id=activity.user_id, outcome="denied")
    assert steps_of(activity, denied) == ["forbidden", "missing"]
    assert [e["status"] for e in denied] == [403, 404]
    on_record = await trail(world, object_id=activity.record_id)
    assert steps_of(activity, on_record) == ["read", "file"]


async def test_auditor_filters_by_period(world, activity, db):
    """since (included) and until (excluded) bound the events' times."""
    at = {step: (await the_event(db, rid))["at"] for step, rid in activity.steps.items()}
    items = await trail(
        world,
        actor_id=activity.user_id,
        since=at["units"].isoformat(),
        until=at["search"].isoformat(),
    )
    assert steps_of(activity, items) == ["read", "file", "units"]
    later = await trail(world, actor_id=activity.user_id, since=at["forbidden"].isoformat())
    assert steps_of(activity, later) == ["forbidden"]


async def test_auditor_pages_with_a_cursor(world, activity):
    """Pages of 2 follow each other with no duplicate and no gap, up to a last page
    without a cursor; together they are the unpaged list."""
    whole = await world.ok(
        "auditor", "GET", f"{API}/audit/events", params={"actor_id": activity.user_id}
    )
    assert whole.json()["next_cursor"] is None
    expected = [e["id"] for e in whole.json()["items"]]
    assert len(expected) == 9
    pages, cursor = [], None
    while True:
        params = {
            "actor_id": activity.user_id,
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await world.ok("auditor", "GET", f"{API}/audit/events", params=params)).json()
        pages.append([e["id"] for e in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 2, 2, 1]
    assert [i for p in pages for i in p] == expected


async def test_the_auditors_reading_is_audited(world, db, activity):
    """The auditor's own listing is an `audit.events` success holding the filters."""
    response, request_id = await send(
        world.client,
        "GET",
        f"{API}/audit/events",
        headers=await world.auth("auditor"),
        params={"actor_id": activity.user_id, "action": "record."},
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, request_id)
    assert (event["action"], event["outcome"]) == ("audit.events", "success")
    assert event["actor_id"] == await world.id_of("auditor")
    assert event["details"]["query"]["action"] == "record."
    assert event["details"]["query"]["actor_id"] == activity.user_id
