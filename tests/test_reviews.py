"""Review and retention of records, the access log of a record, and the anomaly report.

* Review: every record carries `review_at` and `retain_until`; the supervisors of its
  origin unit list what is due (`GET /reviews`) and decide `keep` or `purge`.
* Retention: `app.jobs.run_retention` (and `crossintel retention run`) purges the records
  past `retain_until` or decided `purge`, leaving a tombstone.
* Access log: who read a record, for the origin unit's supervisors and auditors.
* Anomalies: volume, off hours, denial bursts, selector searches without a case.

Other tests share the database: a test makes due only the records it filed, asserts on its
own ids and actors, and restricts the anomaly report to the time span of its own actions.
"""

import asyncio
import contextlib
import functools
import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from app.jobs import BATCH, run_retention
from app.main import create_app
from app.services import audit, reviews
from app.storage import FileStore
from tests import conftest
from tests.conftest import DELIVERY, run_cli, sign_in, unit_ids

API = "/api/v1"
RECORDS = f"{API}/records"
# A purpose of access (a justification); header values are ASCII, hence no accents.
PURPOSE = {"X-Purpose": "Verification dans le cadre de l'enquete"}
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
JUSTIFICATION = "Information toujours utile a l'enquete en cours"
CHILD_TABLES = ("record_selectors", "record_versions", "record_grants", "record_attachments")


# --- unique values --------------------------------------------------------------------


def word(prefix: str = "revue") -> str:
    """A word no other test uses, letters only (the French text parser keeps it whole)."""
    return prefix + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


def mobile() -> str:
    """A fresh French mobile number, in its E.164 form."""
    return "+336" + random.choice("1245678") + "".join(random.choices("0123456789", k=7))


def unique_pdf() -> bytes:
    return PDF + word().encode()


# --- records ----------------------------------------------------------------------------


# This file's records tell of a delivery seen in the port (conftest.DELIVERY).
record_body = functools.partial(conftest.record_body, **DELIVERY)


async def file_record(client, headers, title: str | None = None, **changes: Any) -> dict:
    """File a record; its JSON (with the ETag under `_etag`)."""
    response = await client.post(
        RECORDS, json=record_body(title or f"Note {word()}", **changes), headers=headers
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "_etag": response.headers["ETag"]}


async def upload(client, headers, record_id: str, content: bytes) -> dict:
    response = await client.post(
        f"{RECORDS}/{record_id}/attachments",
        headers=headers,
        files={"file": ("pv.pdf", content, "application/pdf")},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def search_ids(client, headers, **params: Any) -> set[str]:
    """Ids found by GET /records (with a purpose of access for selector searches)."""
    if "selector" in params:
        headers = {**headers, **PURPOSE}
    response = await client.get(RECORDS, headers=headers, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def open_case(client, headers, title: str = "Filière conteneurs") -> dict:
    response = await client.post(
        f"{API}/cases", json={"title": title, "priority": "high"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def link(client, headers, case_id: str, record_id: str) -> None:
    response = await client.post(
        f"{API}/cases/{case_id}/records", json={"record_id": record_id}, headers=headers
    )
    assert response.status_code == 204, response.text


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def near(a: datetime, b: datetime, tolerance: timedelta = timedelta(minutes=1)) -> bool:
    return abs(a - b) <= tolerance


# --- the database directly ----------------------------------------------------------------


async def execute(db, sql: str, **params: Any) -> None:
    async with db.sessionmaker() as session, session.begin():
        await session.execute(text(sql), params)


async def scalar(db, sql: str, **params: Any) -> Any:
    async with db.sessionmaker() as session:
        return await session.scalar(text(sql), params)


async def fetch_one(db, sql: str, **params: Any):
    async with db.sessionmaker() as session:
        return (await session.execute(text(sql), params)).one_or_none()


async def make_due(db, record_id: str, days: int = 1) -> None:
    """Make a record due for review, `days` overdue."""
    await execute(
        db,
        "update records set review_at = now() - make_interval(days => :days) where id = :id",
        id=uuid.UUID(record_id),
        days=days,
    )


async def expire(db, record_id: str) -> None:
    """Put a record past its retention period."""
    await execute(
        db,
        "update records set retain_until = now() - interval '1 day' where id = :id",
        id=uuid.UUID(record_id),
    )


async def record_row(db, record_id: str):
    return await fetch_one(db, "select * from records where id = :id", id=uuid.UUID(record_id))


async def child_rows(db, record_id: str) -> dict[str, int]:
    """How many selector, version, grant and attachment rows the record has."""
    counts = {}
    for table in CHILD_TABLES:
        row = await fetch_one(
            db, f"select count(*) as n from {table} where record_id = :id", id=uuid.UUID(record_id)
        )
        counts[table] = row.n
    return counts


async def stored_file_count(db, sha256: str) -> int:
    row = await fetch_one(
        db, "select count(*) as n from record_attachments where sha256 = :s", s=sha256
    )
    return row.n


# --- review and audit through the API ---------------------------------------------------


async def decide(
    client, headers, record_id: str, decision: str, justification: str = JUSTIFICATION
) -> httpx.Response:
    return await client.post(
        f"{RECORDS}/{record_id}/review",
        json={"decision": decision, "justification": justification},
        headers=headers,
    )


async def due(client, headers, limit: int = 100) -> list[dict]:
    """Every item of GET /reviews, page after page."""
    items: list[dict] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"{API}/reviews", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


async def due_ids(client, headers) -> list[str]:
    return [item["record_id"] for item in await due(client, headers)]


async def audit_events(client, auditor, **params: Any) -> list[dict]:
    response = await client.get(
        f"{API}/audit/events", headers=auditor, params={"limit": 500, **params}
    )
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def access_log(client, headers, record_id: str, **params: Any) -> httpx.Response:
    return await client.get(f"{RECORDS}/{record_id}/access-log", headers=headers, params=params)


# --- anomalies ----------------------------------------------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


async def anomalies(client, headers, since: datetime, until: datetime) -> list[dict]:
    response = await client.get(
        f"{API}/audit/anomalies",
        headers=headers,
        params={"from": since.isoformat(), "to": until.isoformat()},
    )
    assert response.status_code == 200, response.text
    return response.json()["anomalies"]


def of_kind(found: list[dict], kind: str, actor: str | None) -> list[dict]:
    """The anomalies of one kind for one actor (by name; None: anonymous)."""
    return [a for a in found if a["kind"] == kind and a["actor_name"] == actor]


def zone_at_local_hour(hour: int) -> str:
    """An Etc/GMT±N zone in which it is now about `hour` o'clock (Etc/GMT-2 is UTC+2)."""
    offset = (hour - now().hour) % 24
    if offset > 12:
        offset -= 24
    zone = "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"
    assert datetime.now(ZoneInfo(zone)).hour == hour, zone
    return zone


@contextlib.asynccontextmanager
async def app_client(settings, db, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app built on the same database with some settings changed."""
    application = create_app(
        settings.model_copy(update={"retention_interval_seconds": 0, **changes}), db=db
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


# === review dates ==========================================================================


async def test_record_carries_review_and_retention_dates(client, auth, settings):
    """A filed record is due for review review_after_days after filing and kept
    retain_days after filing."""
    headers = await auth("cross13.police")
    record = await file_record(client, headers)
    read = await client.get(f"{RECORDS}/{record['id']}", headers=headers)
    assert read.status_code == 200, read.text
    body = read.json()
    created = parse(body["created_at"])
    assert near(parse(body["review_at"]), created + timedelta(days=settings.review_after_days))
    assert near(parse(body["retain_until"]), created + timedelta(days=settings.retain_days))


async def test_a_change_moves_the_review_date(client, auth, db, settings):
    """A PATCH sets review_at review_after_days after the change; retain_until stays."""
    headers = await auth("cross13.police")
    record = await file_record(client, headers)
    await make_due(db, record["id"], days=400)
    before = (await client.get(f"{RECORDS}/{record['id']}", headers=headers)).json()
    assert parse(before["review_at"]) < now()

    changed = await client.patch(
        f"{RECORDS}/{record['id']}",
        json={"title": f"Titre revu {word()}"},
        headers={**headers, "If-Match": record["_etag"]},
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    expected = parse(after["updated_at"]) + timedelta(days=settings.review_after_days)
    assert near(parse(after["review_at"]), expected)
    assert after["retain_until"] == before["retain_until"]
    assert record["id"] not in await due_ids(client, await auth("cross13.chef"))


# === the review list =======================================================================


async def test_supervisor_lists_due_records_of_the_unit_it_supervises(client, auth, db):
    """cross13.chef sees CROSS-13's due records, not those not yet due nor other units'."""
    chef = await auth("cross13.chef")
    title = f"A revoir {word()}"
    mine = await file_record(client, await auth("cross13.police"), title)
    not_yet = await file_record(client, await auth("cross13.police"))
    elsewhere = await file_record(client, await auth("cross83.police"), scope="network")
    await make_due(db, mine["id"])
    await make_due(db, elsewhere["id"])

    items = await due(client, chef)
    by_id = {item["record_id"]: item for item in items}
    assert mine["id"] in by_id
    assert not_yet["id"] not in by_id
    assert elsewhere["id"] not in by_id
    assert {item["unit_code"] for item in items} == {"CROSS-13"}
    entry = by_id[mine["id"]]
    assert entry["title"] == title and entry["unit_id"] == mine["unit_id"]
    assert parse(entry["review_at"]) < now()


async def test_officer_has_no_reviews(client, auth, db):
    """An officer supervises nothing: an empty list, even with a due record of its unit."""
    police = await auth("cross13.police")
    record = await file_record(client, police)
    await make_due(db, record["id"])
    response = await client.get(f"{API}/reviews", headers=police)
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}
    assert record["id"] in await due_ids(client, await auth("cross13.chef"))


async def test_review_list_leaves_out_records_the_supervisor_cannot_see(client, auth, db):
    """An `agency` record of the douane is not listed to the (gendarmerie) supervisor."""
    record = await file_record(client, await auth("cross13.douane"), scope="agency")
    await make_due(db, record["id"])
    assert record["id"] not in await due_ids(client, await auth("cross13.chef"))


async def test_review_list_is_longest_overdue_first_across_pages(client, auth, db):
    """Page after page (limit 1), the due records come longest overdue first."""
    police = await auth("cross13.police")
    records = [await file_record(client, police) for _ in range(3)]
    for record, days in zip(records, (300, 200, 100), strict=True):
        await make_due(db, record["id"], days=days)

    items = await due(client, await auth("cross13.chef"), limit=1)
    ids = [item["record_id"] for item in items]
    assert len(ids) == len(set(ids))
    positions = [ids.index(r["id"]) for r in records]
    assert positions == sorted(positions)
    dates = [parse(item["review_at"]) for item in items]
    assert dates == sorted(dates)


# === decisions ===============================================================================


async def test_keep_moves_review_forward_and_takes_the_record_off_the_list(
    client, auth, db, settings
):
    """`keep` sets review_at review_after_days from now; the record is no longer due."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    await make_due(db, record["id"])
    assert record["id"] in await due_ids(client, chef)

    response = await decide(client, chef, record["id"], "keep")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "keep" and body["decided_by"] == "cross13.chef"
    assert body["justification"] == JUSTIFICATION
    assert body["purge_decided_at"] is None
    expected = parse(body["decided_at"]) + timedelta(days=settings.review_after_days)
    assert near(parse(body["review_at"]), expected)
    read = await client.get(f"{RECORDS}/{record['id']}", headers=chef)
    assert read.json()["review_at"] == body["review_at"]
    assert record["id"] not in await due_ids(client, chef)


async def test_purge_decision_marks_the_record(client, auth, db):
    """`purge` sets purge_decided_at; the record leaves the list, still readable until the
    retention run."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    await make_due(db, record["id"])

    response = await decide(client, chef, record["id"], "purge")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "purge"
    assert body["purge_decided_at"] is not None
    assert near(parse(body["purge_decided_at"]), now())
    row = await record_row(db, record["id"])
    assert row.purge_decided_at is not None and row.purge_decided_by == "cross13.chef"
    assert row.purged_at is None
    assert record["id"] not in await due_ids(client, chef)
    assert (await client.get(f"{RECORDS}/{record['id']}", headers=chef)).status_code == 200


async def test_no_second_decision_after_purge(client, auth, db):
    """Once `purge` is decided, any further decision is a 409."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    await make_due(db, record["id"])
    assert (await decide(client, chef, record["id"], "purge")).status_code == 200
    for decision in ("keep", "purge"):
        again = await decide(client, chef, record["id"], decision)
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "purge_decided"


async def test_keep_does_not_close_the_review(client, auth, db):
    """`keep` does not close the review: a later decision is accepted."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    assert (await decide(client, chef, record["id"], "keep")).status_code == 200
    assert (await decide(client, chef, record["id"], "purge")).status_code == 200


async def test_officer_may_not_review(client, auth, db):
    """An officer of the origin unit sees the record but gets 403; nothing changes."""
    record = await file_record(client, await auth("cross13.police"))
    await make_due(db, record["id"])
    response = await decide(client, await auth("cross13.police"), record["id"], "purge")
    assert response.status_code == 403, response.text
    row = await record_row(db, record["id"])
    assert row.purge_decided_at is None


async def test_supervisor_of_a_unit_above_may_not_review(client, auth):
    """marseille.chef sees a `chain` record of CROSS-13 but does not supervise its origin
    unit: 403."""
    record = await file_record(client, await auth("cross13.police"), scope="chain")
    marseille = await auth("marseille.chef")
    assert (await client.get(f"{RECORDS}/{record['id']}", headers=marseille)).status_code == 200
    response = await decide(client, marseille, record["id"], "keep")
    assert response.status_code == 403, response.text


async def test_supervisor_who_cannot_see_the_record_gets_404(client, auth):
    """lille.chef (supervisor of ANT-LILLE) does not see a CROSS-13 unit record: 404, as
    for a record that does not exist."""
    record = await file_record(client, await auth("cross13.police"))
    lille = await auth("lille.chef")
    response = await decide(client, lille, record["id"], "purge")
    assert response.status_code == 404, response.text
    unknown = await decide(client, lille, str(uuid.uuid4()), "purge")
    assert unknown.status_code == 404
    assert response.json()["detail"] == unknown.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "keep", "justification": "x" * 9},
        {"decision": "keep"},
        {"decision": "archive", "justification": JUSTIFICATION},
        {"decision": "keep", "justification": JUSTIFICATION, "extra": 1},
    ],
)
async def test_invalid_decision_is_a_422(client, auth, db, body):
    """A justification under 10 characters (or missing), an unknown decision or an unknown
    field: 422, and the record is untouched."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    await make_due(db, record["id"])
    response = await client.post(f"{RECORDS}/{record['id']}/review", json=body, headers=chef)
    assert response.status_code == 422, response.text
    assert record["id"] in await due_ids(client, chef)


async def test_blank_justification_is_a_422(client, auth, db):
    """A justification of spaces only justifies nothing: 422, and no decision is taken
    (spaces are stripped from a purpose of access and an escalation's justification)."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    await make_due(db, record["id"])
    response = await decide(client, chef, record["id"], "purge", " " * 12)
    assert response.status_code == 422, response.text
    assert (await record_row(db, record["id"])).purge_decided_at is None


async def test_each_decision_is_an_audit_event(client, auth):
    """Each decision leaves a `record.review` event with its decision and justification."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    keep_reason = f"Toujours pertinent {word()}"
    purge_reason = f"Plus aucune utilite {word()}"
    assert (await decide(client, chef, record["id"], "keep", keep_reason)).status_code == 200
    assert (await decide(client, chef, record["id"], "purge", purge_reason)).status_code == 200

    events = await audit_events(
        client, await auth("auditor"), action="record.review", object_id=record["id"]
    )
    assert [(e["details"]["decision"], e["details"]["justification"]) for e in events] == [
        ("purge", purge_reason),
        ("keep", keep_reason),
    ]
    for event in events:
        assert event["actor_name"] == "cross13.chef" and event["outcome"] == "success"
        assert event["object_type"] == "record"
        assert event["unit_id"] == record["unit_id"]


# === retention ===============================================================================


@pytest.fixture(scope="module")
async def purged(client, auth, db, settings) -> dict:
    """A CROSS-13 record with a phone selector, two versions, a case link (grants) and an
    attachment, read once, put past its retention period and purged by a retention run;
    and a bystander record of the same unit, not due."""
    police, chef = await auth("cross13.police"), await auth("cross13.chef")
    marker, phone = word("purge"), mobile()
    record = await file_record(
        client, police, f"Dossier {marker}", entities=[{"kind": "phone", "number": phone}]
    )
    record_id = record["id"]
    changed = await client.patch(
        f"{RECORDS}/{record_id}",
        json={"narrative": f"Complément {marker}"},
        headers={**police, "If-Match": record["_etag"]},
    )
    assert changed.status_code == 200, changed.text
    attachment = await upload(client, police, record_id, unique_pdf())
    case = await open_case(client, chef)
    await link(client, chef, case["id"], record_id)
    bystander = await file_record(client, police, f"Voisin {marker}")
    assert (await client.get(f"{RECORDS}/{record_id}", headers=police)).status_code == 200

    before = await child_rows(db, record_id)
    path = FileStore(settings.data_dir).path(attachment["sha256"])
    assert path.is_file()
    assert await search_ids(client, police, q=marker) == {record_id, bystander["id"]}

    await expire(db, record_id)
    result = await run_retention(db, settings)
    return {
        "id": record_id,
        "unit_id": record["unit_id"],
        "created_at": record["created_at"],
        "marker": marker,
        "phone": phone,
        "attachment": attachment,
        "path": path,
        "case": case,
        "bystander": bystander["id"],
        "before": before,
        "result": result,
    }


async def test_retention_run_counts_the_purge(purged):
    """The run reports the record among those due and purged."""
    result = purged["result"]
    assert result.due >= 1 and result.purged >= 1
    assert result.files_removed >= 1


async def test_purged_record_answers_410(client, auth, purged):
    """Reading, its history, changing it or attaching to it: 410 `purged`."""
    police = await auth("cross13.police")
    record_url = f"{RECORDS}/{purged['id']}"
    responses = [
        await client.get(record_url, headers=police),
        await client.get(f"{record_url}/history", headers=police),
        await client.patch(
            record_url, json={"title": "Nouveau titre"}, headers={**police, "If-Match": "*"}
        ),
        await client.post(
            f"{record_url}/attachments",
            headers=police,
            files={"file": ("pv.pdf", unique_pdf(), "application/pdf")},
        ),
        await client.get(f"{record_url}/attachments/{purged['attachment']['id']}", headers=police),
    ]
    for response in responses:
        assert response.status_code == 410, (response.request.url, response.text)
        assert response.json()["code"] == "purged"


async def test_purged_record_stays_404_for_those_who_never_saw_it(client, auth, purged):
    """Someone outside the record's audience learns nothing, not even that it was purged."""
    response = await client.get(f"{RECORDS}/{purged['id']}", headers=await auth("lille.chef"))
    assert response.status_code == 404, response.text


async def test_purged_record_is_absent_from_search(client, auth, purged):
    """Neither its words nor its selector find it; the bystander is still found."""
    police = await auth("cross13.police")
    assert await search_ids(client, police, q=purged["marker"]) == {purged["bystander"]}
    assert await search_ids(client, police, selector=purged["phone"]) == set()


async def test_purge_removes_selectors_versions_grants_and_attachments(db, purged):
    """Every child row is gone (there were some of each before)."""
    assert all(n > 0 for n in purged["before"].values()), purged["before"]
    assert purged["before"]["record_versions"] == 2
    assert await child_rows(db, purged["id"]) == dict.fromkeys(CHILD_TABLES, 0)


async def test_purge_removes_the_attachment_file(purged):
    """The file no other record uses is removed from the data folder."""
    assert not purged["path"].exists()


async def test_tombstone_remains(db, purged):
    """The records row stays with id, unit, dates and who decided; its content is blank."""
    row = await record_row(db, purged["id"])
    assert row is not None
    assert str(row.unit_id) == purged["unit_id"]
    assert row.created_at == parse(purged["created_at"])
    assert row.purged_at is not None and near(row.purged_at, now(), timedelta(minutes=10))
    assert row.purge_decided_by == "retention period over"
    assert (row.title, row.narrative, row.entities, row.tags) == ("", "", [], [])
    assert row.commune is None and row.handling_note is None
    emptied = await fetch_one(
        db, "select length(search) as n from records where id = :id", id=uuid.UUID(purged["id"])
    )
    assert emptied.n == 0


async def test_bystander_not_due_is_untouched(client, auth, db, purged):
    """A record of the same unit within its retention period is not purged."""
    row = await record_row(db, purged["bystander"])
    assert row.purged_at is None
    read = await client.get(
        f"{RECORDS}/{purged['bystander']}", headers=await auth("cross13.police")
    )
    assert read.status_code == 200


async def test_case_shows_purged_record_as_placeholder(client, auth, purged):
    """The case linking it shows a withheld placeholder with the purge date."""
    response = await client.get(
        f"{API}/cases/{purged['case']['id']}", headers=await auth("cross13.chef")
    )
    assert response.status_code == 200, response.text
    (linked,) = [r for r in response.json()["records"] if r["record_id"] == purged["id"]]
    assert linked["withheld"] is True and linked["record"] is None
    assert linked["purged_at"] is not None
    assert linked["unit_code"] == "CROSS-13"


async def test_purge_is_one_audit_event_by_the_system(client, auth, purged):
    """One `record.purge` event for the record, by the retention job."""
    events = await audit_events(
        client, await auth("auditor"), action="record.purge", object_id=purged["id"]
    )
    assert len(events) == 1, events
    (event,) = events
    assert event["actor_kind"] == "system" and event["actor_name"] == "retention"
    assert event["object_type"] == "record" and event["outcome"] == "success"
    assert event["details"]["decided_by"] == "retention period over"
    assert event["details"]["unit_id"] == purged["unit_id"]


async def test_access_log_of_a_purged_record_keeps_its_history(client, auth, purged):
    """The audit trail keeps every event about the record: its reads and its purge."""
    response = await access_log(client, await auth("cross13.chef"), purged["id"])
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    actions = [item["action"] for item in items if item["outcome"] == "success"]
    assert actions[0] == "record.purge"
    assert [i["actor_kind"] for i in items if i["action"] == "record.purge"] == ["system"]
    assert "record.read" in actions and actions[-1] == "record.create"


async def test_second_run_purges_nothing_more(client, auth, db, settings, purged):
    """Running again leaves the tombstone as it was, with still one purge event."""
    first = await record_row(db, purged["id"])
    await run_retention(db, settings)
    second = await record_row(db, purged["id"])
    assert second.purged_at == first.purged_at
    assert second.purge_decided_by == first.purge_decided_by
    events = await audit_events(
        client, await auth("auditor"), action="record.purge", object_id=purged["id"]
    )
    assert len(events) == 1


async def test_purged_record_gets_no_grant_when_its_case_changes(client, auth, db, settings):
    """Linking another record to the case recomputes the case's grants: the purged record,
    whose grants went with its purge, gets none back."""
    police, chef = await auth("cross13.police"), await auth("cross13.chef")
    record = await file_record(client, police)
    case = await open_case(client, chef)
    await link(client, chef, case["id"], record["id"])
    await expire(db, record["id"])
    await run_retention(db, settings)
    assert (await child_rows(db, record["id"]))["record_grants"] == 0

    await link(client, chef, case["id"], (await file_record(client, police))["id"])
    assert (await child_rows(db, record["id"]))["record_grants"] == 0


async def test_decided_purge_is_carried_out_by_the_run(client, auth, db, settings):
    """A record decided `purge` (retention period not over) is purged, naming the
    supervisor who decided."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    assert (await decide(client, chef, record["id"], "purge")).status_code == 200

    result = await run_retention(db, settings)
    assert result.purged >= 1
    row = await record_row(db, record["id"])
    assert row.purged_at is not None and row.purge_decided_by == "cross13.chef"
    read = await client.get(f"{RECORDS}/{record['id']}", headers=chef)
    assert read.status_code == 410 and read.json()["code"] == "purged"
    (event,) = await audit_events(
        client, await auth("auditor"), action="record.purge", object_id=record["id"]
    )
    assert event["details"]["decided_by"] == "cross13.chef"


async def test_the_run_forgets_expired_tokens(db, settings):
    """Revoked access tokens and refresh tokens past their expiry go with each run; those
    still running stay (a revoked token must stay refused until it expires)."""
    user_id = await scalar(db, "select id from users where username = 'cross13.police'")
    now = datetime.now(UTC)
    jtis = {"old": f"old-{uuid.uuid4().hex}", "live": f"live-{uuid.uuid4().hex}"}
    hashes = {"old": uuid.uuid4().hex * 2, "live": uuid.uuid4().hex * 2}
    for age, when in (("old", now - timedelta(minutes=1)), ("live", now + timedelta(hours=1))):
        await execute(
            db,
            "insert into revoked_access_tokens (jti, expires_at) values (:jti, :at)",
            jti=jtis[age],
            at=when,
        )
        await execute(
            db,
            "insert into refresh_tokens (id, user_id, family_id, token_hash, expires_at) "
            "values (:id, :user, :family, :hash, :at)",
            id=uuid.uuid4(),
            user=user_id,
            family=uuid.uuid4(),
            hash=hashes[age],
            at=when,
        )
    result = await run_retention(db, settings)
    assert result.tokens_pruned >= 2
    for age, kept in (("old", 0), ("live", 1)):
        assert (
            await scalar(
                db, "select count(*) from revoked_access_tokens where jti = :j", j=jtis[age]
            )
            == kept
        )
        assert (
            await scalar(
                db, "select count(*) from refresh_tokens where token_hash = :h", h=hashes[age]
            )
            == kept
        )


async def test_the_server_purges_due_records_periodically(client, auth, db, settings):
    """The server's lifespan runs retention every `retention_interval_seconds`: a record
    decided `purge` goes without anyone running the command."""
    chef = await auth("cross13.chef")
    record = await file_record(client, await auth("cross13.police"))
    assert (await decide(client, chef, record["id"], "purge")).status_code == 200
    server = create_app(settings.model_copy(update={"retention_interval_seconds": 0.05}), db=db)
    async with server.router.lifespan_context(server):
        for _ in range(200):
            if (await record_row(db, record["id"])).purged_at is not None:
                break
            await asyncio.sleep(0.05)
    assert (await record_row(db, record["id"])).purged_at is not None


async def test_file_shared_with_another_record_stays(client, auth, db, settings):
    """Content-addressed: the same bytes attached to two records stay on disk while the
    other record refers to them, and go with the last one."""
    police = await auth("cross13.police")
    content = unique_pdf()
    first = await file_record(client, police)
    second = await file_record(client, police)
    a = await upload(client, police, first["id"], content)
    b = await upload(client, police, second["id"], content)
    assert a["sha256"] == b["sha256"] == hashlib.sha256(content).hexdigest()
    path = FileStore(settings.data_dir).path(a["sha256"])

    await expire(db, first["id"])
    await run_retention(db, settings)
    assert (await record_row(db, first["id"])).purged_at is not None
    assert path.is_file()
    download = await client.get(f"{RECORDS}/{second['id']}/attachments/{b['id']}", headers=police)
    assert download.status_code == 200 and download.content == content

    await expire(db, second["id"])
    await run_retention(db, settings)
    assert (await record_row(db, second["id"])).purged_at is not None
    assert await stored_file_count(db, a["sha256"]) == 0
    assert not path.exists()


async def test_run_skips_records_another_run_holds(client, auth, db, settings):
    """While one run holds a batch in its open transaction, another run neither waits for
    it nor purges those records again: each is purged once, with one event."""
    police = await auth("cross13.police")
    records = [await file_record(client, police) for _ in range(3)]
    for record in records:
        await expire(db, record["id"])

    async with db.sessionmaker() as holder:
        audit.begin(
            holder,
            audit.Trail.for_settings(
                settings, actor=audit.Actor("system", name="retention"), user_agent="job"
            ),
        )
        held = await reviews.purge_batch(holder, BATCH)
        assert {r["id"] for r in records} <= {str(i) for i in held.purged}
        other = await asyncio.wait_for(run_retention(db, settings), timeout=30)
        assert other.due >= len(records)
        for record in records:
            assert (await record_row(db, record["id"])).purged_at is None
        await audit.finish(holder, None)
        await holder.commit()
    reviews.remove_files(FileStore(settings.data_dir), held.files)

    await run_retention(db, settings)
    auditor = await auth("auditor")
    for record in records:
        assert (await record_row(db, record["id"])).purged_at is not None
        events = await audit_events(client, auditor, action="record.purge", object_id=record["id"])
        assert len(events) == 1, (record["id"], events)


async def test_cli_dry_run_reports_the_count_and_changes_nothing(
    client, auth, db, settings, database_url
):
    """`retention run --dry-run` prints how many records are due and purges none."""
    police = await auth("cross13.police")
    record = await file_record(client, police)
    attachment = await upload(client, police, record["id"], unique_pdf())
    await expire(db, record["id"])
    expected = await fetch_one(
        db,
        "select count(*) as n from records where purged_at is null "
        "and (retain_until <= now() or purge_decided_at is not null)",
    )

    code, out, err = await run_cli(database_url, settings.data_dir, "retention", "run", "--dry-run")
    assert code == 0, (out, err)
    assert out.strip() == f"{expected.n} records due for purging (dry run: nothing changed)"
    assert expected.n >= 1
    assert (await record_row(db, record["id"])).purged_at is None
    assert (await client.get(f"{RECORDS}/{record['id']}", headers=police)).status_code == 200
    assert FileStore(settings.data_dir).path(attachment["sha256"]).is_file()
    assert await child_rows(db, record["id"]) != dict.fromkeys(CHILD_TABLES, 0)


async def test_cli_run_purges_due_records(client, auth, db, settings, database_url):
    """`retention run` purges the due record and its file, and says how many."""
    police = await auth("cross13.police")
    record = await file_record(client, police)
    attachment = await upload(client, police, record["id"], unique_pdf())
    path = FileStore(settings.data_dir).path(attachment["sha256"])
    await expire(db, record["id"])

    code, out, err = await run_cli(database_url, settings.data_dir, "retention", "run")
    assert code == 0, (out, err)
    purged_count, files_removed, pruned = (int(n) for n in out.split()[0::3][:3])
    assert out.strip() == (
        f"{purged_count} records purged, {files_removed} files removed, "
        f"{pruned} expired tokens and web sessions forgotten"
    )
    assert purged_count >= 1 and files_removed >= 1
    read = await client.get(f"{RECORDS}/{record['id']}", headers=police)
    assert read.status_code == 410, read.text
    assert not path.exists()

    code, out, err = await run_cli(database_url, settings.data_dir, "retention", "run", "--dry-run")
    assert code == 0, (out, err)
    assert out.strip() == "0 records due for purging (dry run: nothing changed)"


# === access log ==============================================================================


async def test_access_log_lists_reads_newest_first_with_purpose(client, auth):
    """The origin unit's supervisor sees who read the record, newest first, with the
    purpose each reader gave (none when none was given)."""
    police, gendarme = await auth("cross13.police"), await auth("cross13.gendarme")
    record = await file_record(client, police)
    url = f"{RECORDS}/{record['id']}"
    first_purpose = f"Recoupement procedure {word()}"
    second_purpose = f"Verification de routine {word()}"
    assert (await client.get(url, headers=police)).status_code == 200
    read = await client.get(url, headers={**gendarme, "X-Purpose": first_purpose})
    assert read.status_code == 200
    read = await client.get(url, headers={**police, "X-Purpose": second_purpose})
    assert read.status_code == 200

    response = await access_log(client, await auth("cross13.chef"), record["id"])
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [(i["action"], i["actor_name"], i["purpose"]) for i in items] == [
        ("record.read", "cross13.police", second_purpose),
        ("record.read", "cross13.gendarme", first_purpose),
        ("record.read", "cross13.police", None),
        ("record.create", "cross13.police", None),
    ]
    assert [i["agency"] for i in items[:2]] == ["police", "gendarmerie"]
    dates = [parse(i["at"]) for i in items]
    assert dates == sorted(dates, reverse=True)
    assert all(i["outcome"] == "success" and i["actor_kind"] == "user" for i in items)


async def test_access_log_pages_by_cursor(client, auth):
    """With a small limit, the pages follow each other without gap or repeat."""
    police, chef = await auth("cross13.police"), await auth("cross13.chef")
    record = await file_record(client, police)
    for _ in range(4):
        assert (await client.get(f"{RECORDS}/{record['id']}", headers=police)).status_code == 200
    whole = (await access_log(client, chef, record["id"])).json()["items"]

    paged: list[dict] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await access_log(client, chef, record["id"], **params)
        assert response.status_code == 200, response.text
        paged += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if not cursor:
            break
    # The first full listing is itself an access-log event, on top of the paged one.
    assert paged[1:] == whole
    assert paged[0]["action"] == "record.access_log"
    assert len(whole) == 5


async def test_auditor_reads_any_access_log(client, auth):
    """An auditor reads the log of a record it may not read, and gets 404 for an unknown
    id."""
    auditor = await auth("auditor")
    record = await file_record(client, await auth("cross13.police"))
    assert (await client.get(f"{RECORDS}/{record['id']}", headers=auditor)).status_code == 404
    response = await access_log(client, auditor, record["id"])
    assert response.status_code == 200, response.text
    assert [i["action"] for i in response.json()["items"]][-1] == "record.create"
    assert (await access_log(client, auditor, str(uuid.uuid4()))).status_code == 404


async def test_officer_of_the_unit_may_not_read_the_access_log(client, auth):
    """An officer who sees the record is refused its log: 403."""
    police = await auth("cross13.police")
    record = await file_record(client, police)
    response = await access_log(client, police, record["id"])
    assert response.status_code == 403, response.text


async def test_supervisor_above_who_sees_the_record_gets_403(client, auth):
    """marseille.chef sees a `chain` record of CROSS-13 but does not supervise CROSS-13."""
    record = await file_record(client, await auth("cross13.police"), scope="chain")
    response = await access_log(client, await auth("marseille.chef"), record["id"])
    assert response.status_code == 403, response.text


async def test_supervisor_of_another_unit_gets_404(client, auth):
    """lille.chef does not see a CROSS-13 unit record: 404, as for an unknown record."""
    record = await file_record(client, await auth("cross13.police"))
    lille = await auth("lille.chef")
    response = await access_log(client, lille, record["id"])
    assert response.status_code == 404, response.text
    assert (await access_log(client, lille, str(uuid.uuid4()))).status_code == 404


async def test_agency_record_of_another_agency_is_404_for_the_supervisor(client, auth):
    """An `agency` record of cross13.douane is invisible to cross13.chef (gendarmerie),
    even as supervisor of its origin unit: 404 on its access log; the auditor reads it."""
    record = await file_record(client, await auth("cross13.douane"), scope="agency")
    chef = await auth("cross13.chef")
    assert (await client.get(f"{RECORDS}/{record['id']}", headers=chef)).status_code == 404
    response = await access_log(client, chef, record["id"])
    assert response.status_code == 404, response.text
    assert (await access_log(client, await auth("auditor"), record["id"])).status_code == 200


# === anomalies ===============================================================================


@pytest.mark.parametrize("persona", ["cross13.chef", "cross13.police", "admin"])
async def test_anomalies_are_for_auditors_only(client, auth, persona):
    """Anyone but an auditor: 403."""
    response = await client.get(f"{API}/audit/anomalies", headers=await auth(persona))
    assert response.status_code == 403, response.text
    assert (await client.get(f"{API}/audit/anomalies", headers=await auth("auditor"))).is_success


async def test_anomaly_period_must_be_ordered(client, auth):
    """`from` after `to`: 422 on `from`."""
    end = now()
    response = await client.get(
        f"{API}/audit/anomalies",
        headers=await auth("auditor"),
        params={"from": end.isoformat(), "to": (end - timedelta(hours=1)).isoformat()},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "from"]


async def test_anomaly_period_without_utc_offset_is_not_a_server_error(client, auth):
    """`from` without an offset (the command line reads such times as UTC): an answer, or a
    422 naming the parameter — never a 500."""
    response = await client.get(
        f"{API}/audit/anomalies",
        headers=await auth("auditor"),
        params={"from": (now() - timedelta(hours=1)).replace(tzinfo=None).isoformat()},
    )
    assert response.status_code in (200, 422), response.text


async def test_volume_far_above_the_unit_is_flagged(client, auth, settings, db):
    """A user reading far more than the unit's other members, from anomaly_min_events on,
    is flagged `volume`; a peer reading a little is not, nor is the same user under the
    default threshold."""
    police, gendarme = await auth("cross13.police"), await auth("cross13.gendarme")
    auditor = await auth("auditor")
    units = await unit_ids(client, auditor)
    record = await file_record(client, police)
    url = f"{RECORDS}/{record['id']}"
    reads = 12
    assert reads < settings.anomaly_min_events

    start = now()
    for _ in range(reads):
        assert (await client.get(url, headers=gendarme)).status_code == 200
    for _ in range(2):
        assert (await client.get(url, headers=police)).status_code == 200
    end = now()

    async with app_client(settings, db, anomaly_min_events=10) as lowered:
        found = await anomalies(lowered, auditor, start, end)
    (flagged,) = of_kind(found, "volume", "cross13.gendarme")
    assert flagged["count"] == reads
    assert flagged["unit_id"] == units["CROSS-13"]
    assert "median 0" in flagged["detail"]
    assert of_kind(found, "volume", "cross13.police") == []

    default = await anomalies(client, auditor, start, end)
    assert of_kind(default, "volume", "cross13.gendarme") == []


async def test_volume_of_a_member_of_two_units_is_flagged(client, auth, settings, db, new_user):
    """A user holding memberships in two units, reading far more than the members of
    either, is flagged `volume` too."""
    admin, auditor = await auth("admin"), await auth("auditor")
    user, password = await new_user("police", "CROSS-13", "officer")
    units = await unit_ids(client, admin)
    second = await client.put(
        f"{API}/admin/users/{user['id']}/memberships",
        headers=admin,
        json={"unit_id": units["CROSS-83"], "role": "officer"},
    )
    assert second.status_code == 200, second.text
    token = (await sign_in(client, user["username"], password))["access_token"]
    reader = {"Authorization": f"Bearer {token}"}
    record = await file_record(client, await auth("cross13.police"))
    reads = 12

    start = now()
    for _ in range(reads):
        read = await client.get(f"{RECORDS}/{record['id']}", headers=reader)
        assert read.status_code == 200, read.text
    end = now()

    async with app_client(settings, db, anomaly_min_events=10) as lowered:
        found = await anomalies(lowered, auditor, start, end)
    flagged = of_kind(found, "volume", user["username"])
    assert len(flagged) >= 1, found
    assert all(a["count"] == reads for a in flagged)


async def test_activity_outside_working_hours_is_flagged(client, auth, settings, db):
    """Actions at 02:00 local time are flagged `off_hours`; at noon they are not."""
    cross83 = await auth("cross83.police")
    auditor = await auth("auditor")
    record = await file_record(client, cross83)
    start = now()
    assert (await client.get(f"{RECORDS}/{record['id']}", headers=cross83)).status_code == 200
    end = now()

    night = zone_at_local_hour(2)
    async with app_client(settings, db, anomaly_timezone=night) as at_night:
        found = await anomalies(at_night, auditor, start, end)
    (flagged,) = of_kind(found, "off_hours", "cross83.police")
    assert flagged["count"] == 1
    assert night in flagged["detail"]

    async with app_client(settings, db, anomaly_timezone=zone_at_local_hour(12)) as at_noon:
        found = await anomalies(at_noon, auditor, start, end)
    assert of_kind(found, "off_hours", "cross83.police") == []


async def test_burst_of_denials_is_flagged(client, auth, settings):
    """anomaly_denial_burst 404s within minutes by one user are flagged; one fewer by
    another user are not."""
    burst = settings.anomaly_denial_burst
    douane, cross83 = await auth("cross59.douane"), await auth("cross83.police")
    start = now()
    for _ in range(burst):
        missing = await client.get(f"{RECORDS}/{uuid.uuid4()}", headers=douane)
        assert missing.status_code == 404
    for _ in range(burst - 1):
        missing = await client.get(f"{RECORDS}/{uuid.uuid4()}", headers=cross83)
        assert missing.status_code == 404
    end = now()

    found = await anomalies(client, await auth("auditor"), start, end)
    (flagged,) = of_kind(found, "denial_burst", "cross59.douane")
    assert flagged["count"] == burst
    assert of_kind(found, "denial_burst", "cross83.police") == []


async def test_burst_of_anonymous_denials_is_flagged_by_address(client, auth, settings):
    """Anonymous refusals (401) are grouped by address."""
    start = now()
    for _ in range(settings.anomaly_denial_burst):
        refused = await client.get(f"{RECORDS}/{uuid.uuid4()}")
        assert refused.status_code == 401
    end = now()

    found = await anomalies(client, await auth("auditor"), start, end)
    (flagged,) = of_kind(found, "denial_burst", None)
    assert flagged["actor_id"] is None
    assert flagged["count"] == settings.anomaly_denial_burst
    assert "from 127.0.0.1" in flagged["detail"]


async def test_selector_search_without_a_case_is_flagged(client, auth):
    """A selector search justified by free text is flagged `selector_without_case`; one
    giving a case reference as purpose is not."""
    police, gendarme = await auth("cross13.police"), await auth("cross13.gendarme")
    case = await open_case(client, await auth("cross13.chef"))
    phone = mobile()
    start = now()
    justified = await client.get(RECORDS, params={"selector": phone}, headers={**police, **PURPOSE})
    assert justified.status_code == 200, justified.text
    for_case = await client.get(
        RECORDS, params={"selector": phone}, headers={**gendarme, "X-Purpose": case["reference"]}
    )
    assert for_case.status_code == 200, for_case.text
    end = now()

    found = await anomalies(client, await auth("auditor"), start, end)
    (flagged,) = of_kind(found, "selector_without_case", "cross13.police")
    assert flagged["count"] == 1
    assert of_kind(found, "selector_without_case", "cross13.gendarme") == []


async def test_anomalies_from_the_command_line(client, auth, settings, database_url):
    """`crossintel audit anomalies --from --to` reports the period's findings."""
    douane = await auth("cross59.douane")
    start = now()
    for _ in range(settings.anomaly_denial_burst):
        assert (await client.get(f"{RECORDS}/{uuid.uuid4()}", headers=douane)).status_code == 404
    end = now()

    code, out, err = await run_cli(
        database_url,
        settings.data_dir,
        "audit",
        "anomalies",
        "--from",
        start.isoformat(),
        "--to",
        end.isoformat(),
    )
    assert code == 0, (out, err)
    lines = out.splitlines()
    assert lines[0].startswith(f"anomalies from {start.isoformat()} to {end.isoformat()}: ")
    assert int(lines[0].rsplit(": ", 1)[1]) == len(lines) - 1 >= 1
    burst = [
        line.split() for line in lines[1:] if line.split()[:2] == ["denial_burst", "cross59.douane"]
    ]
    assert len(burst) == 1, out
    assert burst[0][2] == str(settings.anomaly_denial_burst)
