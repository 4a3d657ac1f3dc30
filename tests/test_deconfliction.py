"""Target deconfliction: blind hits between the holders of one selector, requests for
access to the other side's item, exclusions and common selectors, possible person hits.

Every test files selectors of its own (fresh phone numbers, IBANs, names and birth
dates), and looks for the hits of its own records, so tests do not depend on each other
or on what else is in the database. Audit events are read back by X-Request-ID.
"""

import asyncio
import functools
import json
import random
import string
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from stdnum import iban as stdnum_iban

from app.auth.principal import load_principal
from app.events import notification_stream
from app.main import create_app
from app.models import AccessRequest, CommonSelector, RecordGrant
from app.schemas.records import RecordCreate
from app.services import records as records_service
from tests import conftest
from tests.conftest import the_event, user_headers

API = "/api/v1"
HITS = f"{API}/deconfliction/hits"
REQUESTS = f"{API}/deconfliction/access-requests"
EXCLUSIONS = f"{API}/admin/deconfliction/exclusions"
# Reading a record seen only through a grant needs a purpose of access (ASCII header).
PURPOSE = {"X-Purpose": "Verification suite a une concordance"}
JUSTIFICATION = "Meme numero dans notre enquete sur un go-fast"
WAIT = 15
MASK = "•"


# --- fresh values -------------------------------------------------------------------------


def digits(n: int) -> str:
    return "".join(random.choice(string.digits) for _ in range(n))


def letters(n: int) -> str:
    return "".join(random.choice(string.ascii_lowercase) for _ in range(n))


def word(prefix: str = "mot") -> str:
    """A word no other test uses (letters only)."""
    return prefix + letters(12)


def mobile() -> dict[str, str]:
    """A fresh French mobile number: national, international and E.164 forms, and the
    8 digits after `06`."""
    d = random.choice("1245678") + digits(7)
    pairs = " ".join(d[i : i + 2] for i in range(0, 8, 2))
    return {
        "national": f"06 {pairs}",
        "international": f"+33 6 {pairs}",
        "e164": f"+336{d}",
        "digits": d,
    }


def landline() -> dict[str, str]:
    """A fresh Paris landline (01 4x …), like a switchboard."""
    d = "4" + digits(7)
    pairs = " ".join(d[i : i + 2] for i in range(0, 8, 2))
    return {"national": f"01 {pairs}", "international": f"+33 1 {pairs}", "e164": f"+331{d}"}


def iban() -> str:
    """A fresh German IBAN (compact) with valid check digits."""
    bban = "37040044" + digits(10)
    return "DE" + stdnum_iban.calc_check_digits("DE00" + bban) + bban


def birth_date() -> str:
    """A random birth date, so that person matches do not meet other tests' persons."""
    day = datetime(1945, 1, 1) + timedelta(days=random.randrange(60 * 365))
    return day.date().isoformat()


def phone(number: str) -> dict:
    return {"kind": "phone", "number": number}


def account(value: str) -> dict:
    return {"kind": "bank_account", "iban": value}


def person(surname: str, given_names: str, born: str | None) -> dict:
    entity = {"kind": "person", "surname": surname, "given_names": given_names}
    if born:
        entity["birth_date"] = born
    return entity


# --- filing and reading -------------------------------------------------------------------


def record_body(entities: list[dict], **changes) -> dict:
    return conftest.record_body(
        f"Note {word()}",
        narrative=f"Livraison observée au port, récit {word()}.",
        occurred_at="2026-03-14T21:15:00+01:00",
        entities=entities,
        **changes,
    )


async def file_record(client, headers, entities: list[dict], **changes) -> dict:
    response = await client.post(
        f"{API}/records", json=record_body(entities, **changes), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def read_record(client, headers, record_id: str, purpose: bool = True) -> httpx.Response:
    if purpose:
        headers = {**headers, **PURPOSE}
    return await client.get(f"{API}/records/{record_id}", headers=headers)


async def all_hits(client, headers, **params) -> list[dict]:
    """Every hit the caller sees, all pages."""
    items: list[dict] = []
    cursor = None
    while True:
        query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(HITS, params=query, headers=headers)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def hits_of(client, headers, item_id: str, **params) -> list[dict]:
    """The hits the caller sees whose own side is this record or case."""
    return [
        h
        for h in await all_hits(client, headers, **params)
        if item_id in (h["mine"]["record_id"], h["mine"]["case_id"])
    ]


async def hit_ids(client, headers) -> set[str]:
    return {h["id"] for h in await all_hits(client, headers)}


async def request_access(client, headers, hit_id: str, justification: str = JUSTIFICATION):
    return await client.post(
        f"{HITS}/{hit_id}/access-requests", json={"justification": justification}, headers=headers
    )


def later(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**(delta or {"days": 7}))).isoformat()


async def decide(
    client, headers, request_id: str, decision: str, expires_at: str | None = None, note=""
) -> httpx.Response:
    body: dict[str, Any] = {"decision": decision, "note": note or "Décision motivée"}
    if expires_at is not None:
        body["expires_at"] = expires_at
    return await client.post(f"{REQUESTS}/{request_id}/decision", json=body, headers=headers)


async def approve(client, headers, request_id: str, **delta) -> dict:
    response = await decide(client, headers, request_id, "approve", later(**delta))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "approved"
    return response.json()


async def listed_requests(client, headers) -> set[str]:
    response = await client.get(REQUESTS, params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return {r["id"] for r in response.json()}


async def notifications_about(client, headers, hit_id: str) -> list[dict]:
    response = await client.get(f"{API}/notifications", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return [n for n in response.json()["items"] if n["hit_id"] == hit_id]


async def fresh(client, new_user, agency: str, unit: str, role: str = "officer"):
    """A new account of its own in `unit`: (user json, headers)."""
    user, password = await new_user(agency, unit, role)
    return user, await user_headers(client, user, password)


async def phone_hit(client, auth, *, changes_13: dict | None = None) -> tuple[dict, dict, str]:
    """cross13.police and cross59.douane file one fresh phone, in two spellings: the two
    records and the id of their hit."""
    number = mobile()
    ours = await file_record(
        client, await auth("cross13.police"), [phone(number["national"])], **(changes_13 or {})
    )
    theirs = await file_record(
        client, await auth("cross59.douane"), [phone(number["international"])]
    )
    [hit] = await hits_of(client, await auth("cross59.douane"), theirs["id"])
    return ours, theirs, hit["id"]


# --- audit --------------------------------------------------------------------------------


# Every request of this file: a `deconfliction-test-…` X-Request-ID.
send = functools.partial(conftest.send, label="deconfliction")


# --- an app with a low threshold for common selectors -----------------------------------


@pytest.fixture
async def strict_client(settings, db):
    """A client of an app whose selectors become common above 2 holders."""
    strict = create_app(settings.model_copy(update={"deconfliction_common_holders": 2}), db=db)
    transport = httpx.ASGITransport(app=strict, raise_app_exceptions=False)
    async with (
        strict.router.lifespan_context(strict),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield http


# --- the blind hit ------------------------------------------------------------------------


async def test_same_phone_in_two_units_makes_one_blind_hit_on_each_side(client, auth):
    """The done-when: a phone filed in national form by CROSS-13 and in international
    form by CROSS-59 is one hit, seen from each side with the other's unit, agency and
    contact, and the value masked."""
    police, douane = await auth("cross13.police"), await auth("cross59.douane")
    number = mobile()
    ours = await file_record(client, police, [phone(number["national"])])
    theirs = await file_record(client, douane, [phone(number["international"])])

    [from_13] = await hits_of(client, police, ours["id"])
    [from_59] = await hits_of(client, douane, theirs["id"])
    assert from_13["id"] == from_59["id"]
    masked = f"+33 6 {MASK * 2} {MASK * 2} {MASK * 2} {number['digits'][-2:]}"
    for seen, own, other_code, other_agency in (
        (from_13, ours, "CROSS-59", "douane"),
        (from_59, theirs, "CROSS-13", "police"),
    ):
        assert (seen["kind"], seen["selector_type"]) == ("exact", "phone")
        assert seen["masked_value"] == masked
        assert seen["mine"]["item"] == "record" and seen["mine"]["record_id"] == own["id"]
        assert seen["other"]["item"] == "record"
        assert seen["other"]["unit_code"] == other_code
        assert seen["other"]["agency"] == other_agency
        assert seen["other"]["contact"] and all(seen["other"]["contact"])
    # Only the one hit: no hit with any other holder of this fresh number. (Other tests'
    # numbers may share the masked form: the record tells this number's hits apart.)
    assert [
        h["id"] for h in await all_hits(client, police) if h["mine"]["record_id"] == ours["id"]
    ] == [from_13["id"]]

    one = await client.get(f"{HITS}/{from_13['id']}", headers=police)
    assert one.status_code == 200, one.text
    assert one.json() == from_13
    assert (await client.get(f"{HITS}/{from_13['id']}", headers=douane)).json() == from_59


# --- requests for access --------------------------------------------------------------


async def test_neither_side_reads_the_others_record_before_approval(client, auth):
    """A hit opens nothing: each side's record stays 404 to the other, with a purpose of
    access or without."""
    ours, theirs, _ = await phone_hit(client, auth)
    for headers, record in (
        (await auth("cross13.police"), theirs),
        (await auth("cross59.douane"), ours),
    ):
        for purpose in (True, False):
            response = await read_record(client, headers, record["id"], purpose)
            assert response.status_code == 404, response.text


async def test_approved_request_opens_that_record_only_until_expiry(client, auth, new_user, db):
    """cross13.police asks; a supervisor of CROSS-59 approves: the record opens to the
    requester (with a purpose: it is seen through a grant), only that record, until the
    grant expires."""
    police = await auth("cross13.police")
    _, chef_59 = await fresh(client, new_user, "douane", "CROSS-59", "supervisor")
    ours, theirs, hit_id = await phone_hit(client, auth)
    unrelated = await file_record(client, await auth("cross59.douane"), [])

    asked = await request_access(client, police, hit_id)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "pending" and request["item"] == "record"
    assert request["record_id"] == theirs["id"] and request["requester_unit_code"] == "CROSS-13"
    assert (await read_record(client, police, theirs["id"])).status_code == 404

    decided = await approve(client, chef_59, request["id"])
    assert decided["decided_by"] and decided["expires_at"]

    opened = await read_record(client, police, theirs["id"])
    assert opened.status_code == 200, opened.text
    assert opened.json()["title"] == theirs["title"]
    without_purpose = await read_record(client, police, theirs["id"], purpose=False)
    assert without_purpose.status_code == 428, without_purpose.text
    assert (await read_record(client, police, unrelated["id"])).status_code == 404
    # Only the requester: another CROSS-13 officer still gets 404.
    assert (
        await read_record(client, await auth("cross13.gendarme"), theirs["id"])
    ).status_code == 404

    async with db.sessionmaker() as session, session.begin():
        past = datetime.now(UTC) - timedelta(minutes=1)
        changed = await session.execute(
            update(RecordGrant)
            .where(RecordGrant.source_id == uuid.UUID(request["id"]))
            .values(expires_at=past)
        )
        assert changed.rowcount == 1
        await session.execute(
            update(AccessRequest)
            .where(AccessRequest.id == uuid.UUID(request["id"]))
            .values(expires_at=past)
        )
    assert (await read_record(client, police, theirs["id"])).status_code == 404


async def test_approval_the_other_way_round(client, auth):
    """cross59.douane asks for the CROSS-13 record; cross13.chef approves."""
    douane, chef = await auth("cross59.douane"), await auth("cross13.chef")
    ours, _, hit_id = await phone_hit(client, auth)
    asked = await request_access(client, douane, hit_id)
    assert asked.status_code == 201, asked.text
    assert asked.json()["record_id"] == ours["id"]
    assert asked.json()["requester_unit_code"] == "CROSS-59"
    assert (await read_record(client, douane, ours["id"])).status_code == 404

    await approve(client, chef, asked.json()["id"], hours=2)
    opened = await read_record(client, douane, ours["id"])
    assert opened.status_code == 200, opened.text
    assert opened.json()["id"] == ours["id"]


async def test_declined_request_leaves_the_record_hidden(client, auth):
    """A declined request opens nothing, and its requester hears of it."""
    douane, chef = await auth("cross59.douane"), await auth("cross13.chef")
    ours, _, hit_id = await phone_hit(client, auth)
    asked = await request_access(client, douane, hit_id)
    assert asked.status_code == 201, asked.text
    declined = await decide(client, chef, asked.json()["id"], "decline", note="Pas en l'état")
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined" and declined.json()["expires_at"] is None
    assert (await read_record(client, douane, ours["id"])).status_code == 404
    told = await notifications_about(client, douane, hit_id)
    assert [n["kind"] for n in told if n["kind"] == "access_decided"] == ["access_decided"]


async def test_approval_of_a_request_for_a_case_makes_an_observer(client, auth):
    """A request for the other side's case, once approved, puts the requester on the case
    team as an observer until the expiry."""
    chef, var = await auth("cross13.chef"), await auth("cross83.police")
    number = mobile()
    theirs = await file_record(client, var, [phone(number["national"])])
    opened = await client.post(
        f"{API}/cases", json={"title": f"Filière {word()}", "priority": "high"}, headers=chef
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    added = await client.post(
        f"{API}/cases/{case_id}/entities", json={"entity": phone(number["e164"])}, headers=chef
    )
    assert added.status_code == 201, added.text
    [hit] = await hits_of(client, var, theirs["id"])
    asked = await request_access(client, var, hit["id"])
    assert asked.status_code == 201, asked.text
    assert (asked.json()["item"], asked.json()["case_id"]) == ("case", case_id)
    assert (await client.get(f"{API}/cases/{case_id}", headers=var)).status_code == 404

    await approve(client, chef, asked.json()["id"])
    seen = await client.get(f"{API}/cases/{case_id}", headers=var)
    assert seen.status_code == 200, seen.text


async def test_an_expiry_without_a_time_zone_is_refused(client, auth):
    """`expires_at` without an offset is ambiguous: a 422 on the field, not a crash."""
    douane, chef = await auth("cross59.douane"), await auth("cross13.chef")
    _, _, hit_id = await phone_hit(client, auth)
    asked = await request_access(client, douane, hit_id)
    assert asked.status_code == 201, asked.text
    naive = (datetime.now(UTC) + timedelta(days=3)).replace(tzinfo=None).isoformat()
    response = await decide(client, chef, asked.json()["id"], "approve", naive)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "expires_at"]


async def test_who_decides_and_only_once(client, auth):
    """The holder's supervisors decide: a member who sees the item but does not supervise
    gets 403, those who do not see it 404; approving needs a future expiry; a second
    decision is a 409, as is a second pending request."""
    douane, chef = await auth("cross59.douane"), await auth("cross13.chef")
    _, _, hit_id = await phone_hit(client, auth)
    asked = await request_access(client, douane, hit_id)
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    again = await request_access(client, douane, hit_id)
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "access_request_pending"

    for persona in ("cross13.police", "cross13.douane", "cross13.gendarme"):
        response = await decide(client, await auth(persona), request_id, "approve", later())
        assert response.status_code == 403, (persona, response.text)
    for persona in ("cross59.douane", "cross83.police", "marseille.chef", "admin", "auditor"):
        response = await decide(client, await auth(persona), request_id, "approve", later())
        assert response.status_code == 404, (persona, response.text)
    missing = await decide(client, chef, str(uuid.uuid4()), "approve", later())
    assert missing.status_code == 404

    no_expiry = await decide(client, chef, request_id, "approve")
    assert no_expiry.status_code == 422, no_expiry.text
    assert no_expiry.json()["errors"][0]["loc"] == ["body", "expires_at"]
    past = await decide(client, chef, request_id, "approve", later(minutes=-5))
    assert past.status_code == 422, past.text
    assert past.json()["errors"][0]["loc"] == ["body", "expires_at"]

    await approve(client, chef, request_id)
    twice = await decide(client, chef, request_id, "decline")
    assert twice.status_code == 409, twice.text
    assert twice.json()["code"] == "already_decided"


# --- who holds what -----------------------------------------------------------------------


async def test_agencies_of_one_unit_make_one_hit(client, auth):
    """Police and customs of CROSS-13 filing one IBAN (scope `unit`) make one hit; each
    side is shown the other agency as the other side."""
    police, douane = await auth("cross13.police"), await auth("cross13.douane")
    value = iban()
    ours = await file_record(client, police, [account(value)])
    theirs = await file_record(client, douane, [account(value)])

    [from_douane] = await hits_of(client, douane, theirs["id"])
    seen = await client.get(f"{HITS}/{from_douane['id']}", headers=police)
    assert seen.status_code == 200, seen.text
    from_police = seen.json()
    assert from_police["selector_type"] == "iban"
    assert from_police["masked_value"].startswith("DE")
    assert from_police["masked_value"].replace(" ", "").endswith(value[-4:])
    # Each side's own item is its own record, and the other side the other agency.
    assert (from_douane["mine"]["record_id"], from_douane["other"]["agency"]) == (
        theirs["id"],
        "police",
    )
    assert (from_police["mine"]["record_id"], from_police["other"]["agency"]) == (
        ours["id"],
        "douane",
    )
    assert from_police["other"]["unit_code"] == from_douane["other"]["unit_code"] == "CROSS-13"
    assert [h["id"] for h in await hits_of(client, police, ours["id"])] == [from_douane["id"]]
    chef_sees = [
        h
        for h in await all_hits(client, await auth("cross13.chef"))
        if h["id"] == from_police["id"]
    ]
    assert len(chef_sees) == 1


async def test_a_case_entity_meets_a_record(client, auth):
    """An entity added to a CROSS-13 case that a CROSS-83 record holds: one hit, a case
    on one side and a record on the other."""
    chef, var = await auth("cross13.chef"), await auth("cross83.police")
    number = mobile()
    theirs = await file_record(client, var, [phone(number["e164"])])
    opened = await client.post(
        f"{API}/cases", json={"title": f"Filière {word()}", "priority": "high"}, headers=chef
    )
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["id"]
    added = await client.post(
        f"{API}/cases/{case_id}/entities",
        json={"entity": phone(number["national"])},
        headers=chef,
    )
    assert added.status_code == 201, added.text

    [from_case] = await hits_of(client, chef, case_id)
    [from_record] = await hits_of(client, var, theirs["id"])
    assert from_case["id"] == from_record["id"]
    assert from_case["mine"] == {
        "item": "case",
        "record_id": None,
        "case_id": case_id,
        "first_at": from_case["mine"]["first_at"],
    }
    assert from_case["other"]["item"] == "record"
    assert (from_case["other"]["unit_code"], from_case["other"]["agency"]) == ("CROSS-83", "police")
    assert from_record["other"]["item"] == "case"
    assert from_record["other"]["unit_code"] == "CROSS-13"
    assert from_record["other"]["agency"] is None
    assert from_record["other"]["contact"]
    # The case stays closed to CROSS-83.
    assert (await client.get(f"{API}/cases/{case_id}", headers=var)).status_code == 404


async def test_one_party_filing_twice_makes_no_hit(client, auth, new_user):
    """Two records of one party (a unit and an agency), even by two officers, hold the
    selector as one holder: no hit between them."""
    police = await auth("cross13.police")
    _, colleague = await fresh(client, new_user, "police", "CROSS-13")
    value = iban()
    first = await file_record(client, police, [account(value)])
    second = await file_record(client, police, [account(value)])
    third = await file_record(client, colleague, [account(value)])
    for record in (first, second, third):
        assert await hits_of(client, police, record["id"]) == []
    assert await hits_of(client, colleague, third["id"]) == []


async def test_filing_again_does_not_repeat_a_hit(client, auth):
    """A party filing the selector again, after its hit was made, makes no second hit."""
    police, douane = await auth("cross13.police"), await auth("cross59.douane")
    ours, theirs, hit_id = await phone_hit(client, auth)
    again = await file_record(client, police, [phone(ours["entities"][0]["number"])])
    assert await hits_of(client, police, again["id"]) == []
    assert [h["id"] for h in await hits_of(client, police, ours["id"])] == [hit_id]
    assert [h["id"] for h in await hits_of(client, douane, theirs["id"])] == [hit_id]


async def test_hits_page_by_cursor_each_once(client, auth, new_user):
    """Three hits made by one filing (one transaction, one timestamp) come one per page,
    each once."""
    _, corsica = await fresh(client, new_user, "gendarmerie", "CROSS-2A")
    value = iban()
    for persona in ("cross13.police", "cross83.police", "cross59.douane"):
        await file_record(client, await auth(persona), [account(value)])
    record = await file_record(client, corsica, [account(value)])

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await client.get(HITS, params=params, headers=corsica)
        assert response.status_code == 200, response.text
        seen += [
            h["id"] for h in response.json()["items"] if h["mine"]["record_id"] == record["id"]
        ]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert cursor is None
    assert len(seen) == 3 and len(set(seen)) == 3


# --- nothing of the other side's content --------------------------------------------------


def secrets_of(record: dict, names: list[str], number: dict[str, str]) -> list[str]:
    """What must never reach the other side: title, narrative, names, handling note, the
    full number in every spelling."""
    return [
        record["title"],
        record["narrative"],
        *names,
        *(n.upper() for n in names),
        record.get("handling_note") or record["title"],
        number["e164"],
        number["national"],
        number["international"],
        number["digits"],
    ]


def assert_hidden(what: str, payload: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in payload, f"{what} discloses {secret!r}"


async def test_hits_and_notifications_disclose_no_content(client, auth, new_user):
    """The hit (list and one) and the notifications of both sides (authors and
    supervisors, hit and access request) carry no title, narrative, name, handling code
    or full value of the other side."""
    number = mobile()
    name_13, name_59 = word("Surnom"), word("Alias")
    _, author_13 = await fresh(client, new_user, "police", "CROSS-13")
    _, author_59 = await fresh(client, new_user, "douane", "CROSS-59")
    _, chef_59 = await fresh(client, new_user, "douane", "CROSS-59", "supervisor")
    chef_13 = await auth("cross13.chef")
    ours = await file_record(
        client,
        author_13,
        [phone(number["national"]), person(name_13, "Karim", None)],
        handling_code="H3",
        handling_note=f"Ne pas diffuser {word()}",
    )
    theirs = await file_record(
        client,
        author_59,
        [phone(number["international"]), person(name_59, "Nadia", None)],
        handling_code="H1",
    )
    [hit] = await hits_of(client, author_59, theirs["id"])
    asked = await request_access(client, author_59, hit["id"])
    assert asked.status_code == 201, asked.text
    asked_back = await request_access(client, author_13, hit["id"])
    assert asked_back.status_code == 201, asked_back.text

    # The random texts are checked on the whole raw list; the handling codes, which other
    # hits' masked values could in principle spell, on this hit and its notifications.
    sides = (
        (author_59, chef_59, secrets_of(ours, [name_13], number), "H3"),
        (author_13, chef_13, secrets_of(theirs, [name_59], number), "H1"),
    )
    for author, chef, hidden, code in sides:
        for headers in (author, chef):
            listed = await client.get(HITS, params={"limit": 100}, headers=headers)
            assert listed.status_code == 200, listed.text
            assert_hidden("the hit list", listed.text, hidden)
            one = await client.get(f"{HITS}/{hit['id']}", headers=headers)
            assert one.status_code == 200, one.text
            assert_hidden("the hit", one.text, [*hidden, code])
            told = await notifications_about(client, headers, hit["id"])
            assert told, "a side was not notified"
            assert_hidden("a notification", json.dumps(told, ensure_ascii=False), [*hidden, code])
    kinds_59 = {n["kind"] for n in await notifications_about(client, chef_59, hit["id"])}
    assert kinds_59 == {"deconfliction_hit", "access_requested"}
    kinds_13 = {n["kind"] for n in await notifications_about(client, chef_13, hit["id"])}
    assert kinds_13 == {"deconfliction_hit", "access_requested"}


async def test_the_event_stream_discloses_no_content(app, client, db, new_user):
    """What the live stream sends each author about the hit carries nothing of the other
    side either."""
    number = mobile()
    name_13, name_59 = word("Surnom"), word("Alias")
    user_13, author_13 = await fresh(client, new_user, "police", "CROSS-13")
    user_59, author_59 = await fresh(client, new_user, "douane", "CROSS-59")
    ours = await file_record(
        client, author_13, [phone(number["national"]), person(name_13, "Karim", None)]
    )

    streams = {}
    async with db.sessionmaker() as session:
        for user in (user_13, user_59):
            principal = await load_principal(session, f"user:{user['id']}")
            stream = notification_stream(
                db, app.state.events, principal, WAIT, datetime.now(UTC) + timedelta(minutes=2)
            )
            assert await asyncio.wait_for(anext(stream), WAIT) == b": connected\n\n"
            streams[user["id"]] = stream
    try:
        theirs = await file_record(
            client, author_59, [phone(number["international"]), person(name_59, "Nadia", None)]
        )
        sent_13 = (await asyncio.wait_for(anext(streams[user_13["id"]]), WAIT)).decode()
        sent_59 = (await asyncio.wait_for(anext(streams[user_59["id"]]), WAIT)).decode()
    finally:
        for stream in streams.values():
            await stream.aclose()
    assert "event: notification" in sent_13 and "event: notification" in sent_59
    assert '"deconfliction_hit"' in sent_13 and '"deconfliction_hit"' in sent_59
    assert_hidden("the stream", sent_13, secrets_of(theirs, [name_59], number))
    assert_hidden("the stream", sent_59, secrets_of(ours, [name_13], number))


# --- handling -----------------------------------------------------------------------------


async def test_approval_opens_an_h2_record(client, auth):
    """For an H2 record the approval is the originating unit's consent: it opens."""
    douane, chef = await auth("cross59.douane"), await auth("cross13.chef")
    ours, _, hit_id = await phone_hit(client, auth, changes_13={"handling_code": "H2"})
    assert ours["handling_code"] == "H2"
    asked = await request_access(client, douane, hit_id)
    assert asked.status_code == 201, asked.text
    assert (await read_record(client, douane, ours["id"])).status_code == 404
    await approve(client, chef, asked.json()["id"])
    opened = await read_record(client, douane, ours["id"])
    assert opened.status_code == 200, opened.text
    assert opened.json()["handling_code"] == "H2"


async def test_an_agency_record_is_not_opened_to_another_agency(client, auth, new_user):
    """An `agency` record of customs cannot be opened to a police officer: 409
    agency_bound, nothing granted, the request still pending."""
    douane, var = await auth("cross13.douane"), await auth("cross83.police")
    _, chef_douane = await fresh(client, new_user, "douane", "CROSS-13", "supervisor")
    value = iban()
    ours = await file_record(client, douane, [account(value)], scope="agency")
    theirs = await file_record(client, var, [account(value)])
    [hit] = await hits_of(client, var, theirs["id"])
    asked = await request_access(client, var, hit["id"])
    assert asked.status_code == 201, asked.text
    assert asked.json()["record_id"] == ours["id"]

    refused = await decide(client, chef_douane, asked.json()["id"], "approve", later())
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "agency_bound"
    assert (await read_record(client, var, ours["id"])).status_code == 404
    pending = await client.get(REQUESTS, params={"status": "pending"}, headers=var)
    assert asked.json()["id"] in {r["id"] for r in pending.json()}


# --- exclusions and common selectors ------------------------------------------------------


async def test_an_excluded_number_raises_no_hit_until_the_exclusion_is_removed(client, auth):
    """An admin excludes a switchboard number (any spelling): its later filings raise no
    hit; a second exclusion of it is a 409; once removed, new holders raise hits again."""
    admin = await auth("admin")
    number = landline()
    created = await client.post(
        EXCLUSIONS,
        json={"type": "phone", "value": number["national"], "reason": "Standard d'une mairie"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    exclusion = created.json()
    assert (exclusion["type"], exclusion["value"]) == ("phone", number["e164"])
    assert exclusion["added_by"] == "admin"
    listed = await client.get(EXCLUSIONS, headers=admin)
    assert listed.status_code == 200, listed.text
    assert exclusion["id"] in {e["id"] for e in listed.json()}
    duplicate = await client.post(
        EXCLUSIONS,
        json={"type": "phone", "value": number["international"], "reason": "Encore le standard"},
        headers=admin,
    )
    assert duplicate.status_code == 409, duplicate.text
    assert duplicate.json()["code"] == "exclusion_exists"

    ours = await file_record(client, await auth("cross13.police"), [phone(number["national"])])
    theirs = await file_record(
        client, await auth("cross59.douane"), [phone(number["international"])]
    )
    assert await hits_of(client, await auth("cross13.police"), ours["id"]) == []
    assert await hits_of(client, await auth("cross59.douane"), theirs["id"]) == []

    removed = await client.delete(f"{EXCLUSIONS}/{exclusion['id']}", headers=admin)
    assert removed.status_code == 204, removed.text
    assert (
        await client.delete(f"{EXCLUSIONS}/{exclusion['id']}", headers=admin)
    ).status_code == 404
    late = await file_record(client, await auth("cross83.police"), [phone(number["e164"])])
    late_hits = await hits_of(client, await auth("cross83.police"), late["id"])
    assert sorted(h["other"]["unit_code"] for h in late_hits) == ["CROSS-13", "CROSS-59"]


async def test_exclusions_are_for_admins_only(client, auth):
    """Everyone else is refused (403), and an invalid value is a 422."""
    admin = await auth("admin")
    body = {"type": "phone", "value": landline()["national"], "reason": "Standard téléphonique"}
    for persona in ("cross13.chef", "ofast.chef", "auditor", "cross13.police"):
        headers = await auth(persona)
        assert (await client.post(EXCLUSIONS, json=body, headers=headers)).status_code == 403
        assert (await client.get(EXCLUSIONS, headers=headers)).status_code == 403
        assert (
            await client.delete(f"{EXCLUSIONS}/{uuid.uuid4()}", headers=headers)
        ).status_code == 403
    invalid = await client.post(EXCLUSIONS, json={**body, "value": "pas un numéro"}, headers=admin)
    assert invalid.status_code == 422, invalid.text
    assert invalid.json()["errors"][0]["loc"] == ["body", "value"]


async def test_a_selector_held_by_too_many_parties_becomes_common(strict_client, auth, db):
    """With a threshold of 2: the second holder raises a hit; the third makes the
    selector common, with no hit; a fourth raises none either."""
    value = iban()
    parties = ("cross13.police", "cross83.police", "cross59.douane", "cross13.douane")
    records = {}
    for persona in parties:
        records[persona] = await file_record(strict_client, await auth(persona), [account(value)])

    async def hits(persona: str) -> list[dict]:
        return await hits_of(strict_client, await auth(persona), records[persona]["id"])

    [first] = await hits("cross13.police")
    assert [h["id"] for h in await hits("cross83.police")] == [first["id"]]
    assert await hits("cross59.douane") == []
    assert await hits("cross13.douane") == []
    async with db.sessionmaker() as session:
        common = await session.get(CommonSelector, ("iban", value))
    assert common is not None and common.holders == 3


# --- persons ------------------------------------------------------------------------------


async def test_similar_names_born_the_same_day_make_a_possible_hit(client, auth):
    """DUPONT Jean-Pierre and DUPOND Jean Pierre, born the same day, in two units: a
    `possible` hit for both sides, which opens nothing."""
    police, var = await auth("cross13.police"), await auth("cross83.police")
    born, tail = birth_date(), letters(5)
    ours = await file_record(client, police, [person(f"Dupont{tail}", "Jean-Pierre", born)])
    theirs = await file_record(client, var, [person(f"Dupond{tail}", "Jean Pierre", born)])

    [from_13] = await hits_of(client, police, ours["id"])
    [from_83] = await hits_of(client, var, theirs["id"])
    assert from_13["id"] == from_83["id"]
    assert (from_13["kind"], from_13["selector_type"]) == ("possible", "person")
    assert from_13["masked_value"].endswith(f", {born[:4]}")
    assert from_13["masked_value"].startswith("D" + MASK)
    assert from_13["other"]["unit_code"] == "CROSS-83"
    assert from_83["other"]["unit_code"] == "CROSS-13"
    assert [h["id"] for h in await hits_of(client, police, ours["id"], kind="possible")] == [
        from_13["id"]
    ]
    assert await hits_of(client, police, ours["id"], kind="exact") == []
    assert (await read_record(client, police, theirs["id"])).status_code == 404
    assert (await read_record(client, var, ours["id"])).status_code == 404


@pytest.mark.parametrize("differs", ["name", "birth_date"])
async def test_another_name_or_birth_date_makes_no_person_hit(client, auth, differs):
    """A clearly different name, or the same name born another day: no hit."""
    police, var = await auth("cross13.police"), await auth("cross83.police")
    born, tail = birth_date(), letters(5)
    ours = await file_record(client, police, [person(f"Dupont{tail}", "Jean-Pierre", born)])
    if differs == "name":
        entity = person(f"Martin{letters(5)}", "Paul", born)
    else:
        other_day = (datetime.fromisoformat(born) + timedelta(days=1)).date().isoformat()
        entity = person(f"Dupont{tail}", "Jean-Pierre", other_day)
    theirs = await file_record(client, var, [entity])
    assert await hits_of(client, police, ours["id"]) == []
    assert await hits_of(client, var, theirs["id"]) == []


async def test_the_same_person_makes_an_exact_hit(client, auth):
    """The same name (spelt with other accents and hyphens) born the same day: one exact
    hit, no possible one."""
    police, var = await auth("cross13.police"), await auth("cross83.police")
    born, tail = birth_date(), letters(5)
    ours = await file_record(client, police, [person(f"Lefèvre{tail}", "Jean-Pierre", born)])
    theirs = await file_record(client, var, [person(f"LEFEVRE{tail}", "jean pierre", born)])
    [from_13] = await hits_of(client, police, ours["id"])
    [from_83] = await hits_of(client, var, theirs["id"])
    assert from_13["id"] == from_83["id"]
    assert (from_13["kind"], from_13["selector_type"]) == ("exact", "person")


# --- who sees what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona", ["cross83.police", "marseille.chef", "ofast.chef", "admin", "auditor"]
)
async def test_outsiders_do_not_see_a_hit(client, auth, persona):
    """Neither side: 404 on the hit, absent from the list, and no access request."""
    _, _, hit_id = await phone_hit(client, auth)
    headers = await auth(persona)
    response = await client.get(f"{HITS}/{hit_id}", headers=headers)
    assert response.status_code == 404, response.text
    assert hit_id not in await hit_ids(client, headers)
    asked = await request_access(client, headers, hit_id)
    assert asked.status_code == 404, asked.text


async def test_a_side_member_who_does_not_see_the_item_does_not_see_the_hit(client, auth):
    """A hit on a customs `agency` record is not seen by CROSS-13's police."""
    douane = await auth("cross13.douane")
    value = iban()
    ours = await file_record(client, douane, [account(value)], scope="agency")
    await file_record(client, await auth("cross59.douane"), [account(value)])
    [hit] = await hits_of(client, douane, ours["id"])
    for persona in ("cross13.police", "cross13.chef"):
        headers = await auth(persona)
        assert (await client.get(f"{HITS}/{hit['id']}", headers=headers)).status_code == 404
        assert hit["id"] not in await hit_ids(client, headers)


async def test_requests_are_listed_to_the_requester_and_the_target_supervisors(
    client, auth, new_user
):
    """The request is listed to who made it and to the supervisors of the unit holding
    the item — not to anyone else."""
    _, chef_59 = await fresh(client, new_user, "douane", "CROSS-59", "supervisor")
    _, _, hit_id = await phone_hit(client, auth)
    asked = await request_access(client, await auth("cross13.police"), hit_id)
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]

    assert request_id in await listed_requests(client, await auth("cross13.police"))
    assert request_id in await listed_requests(client, chef_59)
    for persona in (
        "cross59.douane",
        "cross13.chef",
        "cross13.gendarme",
        "cross83.police",
        "lille.chef",
        "admin",
        "auditor",
        "douane-dnred",
    ):
        assert request_id not in await listed_requests(client, await auth(persona)), persona


async def test_a_request_for_an_item_a_supervisor_cannot_see_is_not_listed_to_them(client, auth):
    """cross13.chef (gendarmerie) supervises CROSS-13 but does not see a customs `agency`
    record: a request for it is not theirs to see (they could not decide it: 404)."""
    douane, var = await auth("cross13.douane"), await auth("cross83.police")
    chef = await auth("cross13.chef")
    value = iban()
    await file_record(client, douane, [account(value)], scope="agency")
    theirs = await file_record(client, var, [account(value)])
    [hit] = await hits_of(client, var, theirs["id"])
    asked = await request_access(client, var, hit["id"])
    assert asked.status_code == 201, asked.text
    assert (await decide(client, chef, asked.json()["id"], "decline")).status_code == 404
    assert asked.json()["id"] not in await listed_requests(client, chef)


async def test_every_route_leaves_its_audit_event(client, auth, db):
    """hit.list, hit.read, hit.request_access, access_request.list, access_request.decide
    (with grant.create on approval), exclusion.list/create/delete; a refused read leaves
    its denial."""
    douane, chef, admin = (
        await auth("cross59.douane"),
        await auth("cross13.chef"),
        await auth("admin"),
    )
    ours, _, hit_id = await phone_hit(client, auth)

    response, rid = await send(client, "GET", HITS, douane)
    assert response.status_code == 200
    assert (await the_event(db, rid, "hit.list"))["outcome"] == "success"

    response, rid = await send(client, "GET", f"{HITS}/{hit_id}", douane)
    assert response.status_code == 200
    event = await the_event(db, rid, "hit.read")
    assert (event["outcome"], event["object_type"], event["object_id"]) == (
        "success",
        "hit",
        hit_id,
    )

    response, rid = await send(client, "GET", f"{HITS}/{hit_id}", await auth("cross83.police"))
    assert response.status_code == 404
    event = await the_event(db, rid, "hit.read")
    assert (event["outcome"], event["status"], event["object_id"]) == ("denied", 404, hit_id)

    response, rid = await send(
        client,
        "POST",
        f"{HITS}/{hit_id}/access-requests",
        douane,
        json={"justification": JUSTIFICATION},
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["id"]
    event = await the_event(db, rid, "hit.request_access")
    assert (event["outcome"], event["object_id"]) == ("success", hit_id)
    assert event["details"]["access_request_id"] == request_id

    response, rid = await send(client, "GET", REQUESTS, chef)
    assert response.status_code == 200
    assert (await the_event(db, rid, "access_request.list"))["outcome"] == "success"

    response, rid = await send(
        client,
        "POST",
        f"{REQUESTS}/{request_id}/decision",
        chef,
        json={"decision": "approve", "expires_at": later(), "note": "Accord"},
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, rid, "access_request.decide")
    assert (event["outcome"], event["object_id"]) == ("success", request_id)
    grant = await the_event(db, rid, "grant.create")
    assert (grant["object_type"], grant["object_id"]) == ("record", ours["id"])
    assert grant["details"]["reason"] == "access_request"

    number = landline()
    response, rid = await send(
        client,
        "POST",
        EXCLUSIONS,
        admin,
        json={"type": "phone", "value": number["national"], "reason": "Numéro de test"},
    )
    assert response.status_code == 201, response.text
    exclusion_id = response.json()["id"]
    event = await the_event(db, rid, "exclusion.create")
    assert (event["outcome"], event["object_id"]) == ("success", exclusion_id)
    response, rid = await send(client, "GET", EXCLUSIONS, admin)
    assert response.status_code == 200
    assert (await the_event(db, rid, "exclusion.list"))["outcome"] == "success"
    response, rid = await send(client, "DELETE", f"{EXCLUSIONS}/{exclusion_id}", admin)
    assert response.status_code == 204
    event = await the_event(db, rid, "exclusion.delete")
    assert (event["outcome"], event["object_id"]) == ("success", exclusion_id)
    response, rid = await send(
        client,
        "POST",
        EXCLUSIONS,
        chef,
        json={"type": "phone", "value": number["national"], "reason": "Numéro de test"},
    )
    assert response.status_code == 403
    assert (await the_event(db, rid, "exclusion.create"))["outcome"] == "denied"


async def test_filing_a_hit_leaves_a_hit_create_event(client, auth, db):
    """The filing that makes a hit records `hit.create` in its own request's events."""
    number = mobile()
    await file_record(client, await auth("cross13.police"), [phone(number["national"])])
    response, rid = await send(
        client,
        "POST",
        f"{API}/records",
        await auth("cross59.douane"),
        json=record_body([phone(number["e164"])]),
    )
    assert response.status_code == 201, response.text
    [hit] = await hits_of(client, await auth("cross59.douane"), response.json()["id"])
    event = await the_event(db, rid, "hit.create")
    assert (event["object_type"], event["object_id"]) == ("hit", hit["id"])
    assert (await the_event(db, rid, "record.create"))["outcome"] == "success"


# --- filings at the same moment ----------------------------------------------------------


async def test_two_parties_filing_at_the_same_moment_still_meet(client, auth, db, settings):
    """CROSS-13 files a phone while CROSS-59 files it too: the two filings overlap in
    time (CROSS-13's is not yet committed when CROSS-59's matches). Once both are filed,
    the hit must exist."""
    police, douane = await auth("cross13.police"), await auth("cross59.douane")
    me = (await client.get(f"{API}/me", headers=police)).json()["id"]
    number = mobile()
    async with db.sessionmaker() as session:
        async with session.begin():
            principal = await load_principal(session, f"user:{me}")
            ours = await records_service.create_record(
                session,
                principal,
                RecordCreate.model_validate(record_body([phone(number["national"])])),
                settings,
            )
            ours_id = str(ours.id)
            racing = asyncio.create_task(
                client.post(
                    f"{API}/records",
                    json=record_body([phone(number["international"])]),
                    headers=douane,
                )
            )
            await asyncio.sleep(1)  # the other filing runs (or waits for this one)
        theirs = await asyncio.wait_for(racing, 30)
    assert theirs.status_code == 201, theirs.text

    [from_59] = await hits_of(client, douane, theirs.json()["id"])
    [from_13] = await hits_of(client, police, ours_id)
    assert from_13["id"] == from_59["id"]
