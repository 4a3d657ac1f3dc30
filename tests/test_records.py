"""Intelligence records through the API: filing, reading and editing with optimistic
concurrency, history, search (text, selectors, filters, cursors, facets) and attachments.

Who sees what is covered by test_records_visibility.py; here every record is read by
people of its origin unit unless a test says otherwise. Every test files records with a
word of its own, so tests do not depend on each other or on what else is in the database.
"""

import asyncio
import base64
import functools
import hashlib
import json
import random
import re
import uuid
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select
from stdnum import iban as stdnum_iban
from stdnum import imo as stdnum_imo
from stdnum import iso6346 as stdnum_iso6346

from app.main import create_app
from app.models import Record, RecordAttachment, RecordSelector, RecordVersion
from app.services import records as records_service
from tests import conftest
from tests.conftest import DELIVERY, unit_ids, user_headers

API = "/api/v1/records"
# A purpose of access (a justification): searching by selector or person needs one.
# Header values are ASCII (httpx refuses others), hence no accents.
PURPOSE = {"X-Purpose": "Verification dans le cadre de l'enquete"}
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8"
    + b"\x00" * 40
    + b"This program cannot be run in DOS mode.\r\r\n$"
)


# --- unique values --------------------------------------------------------------------


def word(prefix: str = "mot") -> str:
    """A word no other test uses, letters only (so the French text parser keeps it whole)."""
    return prefix + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


def digits(n: int) -> str:
    return "".join(random.choice("0123456789") for _ in range(n))


def mobile() -> dict[str, str]:
    """A fresh French mobile number, in its international, national and E.164 forms."""
    d = random.choice("1245678") + digits(7)  # 0639…, 069x are not all allocated
    pairs = " ".join(d[i : i + 2] for i in range(0, 8, 2))
    return {"international": f"+33 6 {pairs}", "national": f"06 {pairs}", "e164": f"+336{d}"}


def iban() -> str:
    """A fresh German IBAN (compact) with valid check digits."""
    bban = "37040044" + digits(10)
    return "DE" + stdnum_iban.calc_check_digits("DE00" + bban) + bban


def grouped(value: str) -> str:
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def container() -> str:
    """A fresh ISO 6346 container number (compact) with its check digit."""
    base = "".join(random.choice("ABCDEFGHJKLMNPRSTVWXYZ") for _ in range(3)) + "U" + digits(6)
    return base + stdnum_iso6346.calc_check_digit(base)


def imo() -> str:
    base = random.choice("123456789") + digits(5)
    return base + stdnum_imo.calc_check_digit(base)


def plate() -> str:
    letters = "ABCDEFGHJKLMNPQRSTVWXYZ"
    return (
        random.choice(letters)
        + random.choice(letters)
        + "-"
        + digits(3)
        + "-"
        + random.choice(letters)
        + random.choice(letters)
    )


# --- helpers --------------------------------------------------------------------------


# This file's records tell of a delivery seen in the port (conftest.DELIVERY).
record_body = functools.partial(conftest.record_body, **DELIVERY)


async def file_record(client, headers, title: str | None = None, **changes) -> httpx.Response:
    response = await client.post(
        API, json=record_body(title or f"Note {word()}", **changes), headers=headers
    )
    assert response.status_code == 201, response.text
    return response


async def search(client, headers, **params) -> dict:
    """GET /records, with the purpose of access that a selector or person search needs."""
    if "selector" in params or "person" in params:
        headers = {**headers, **PURPOSE}
    response = await client.get(API, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def found_ids(client, headers, **params) -> set[str]:
    return {item["id"] for item in (await search(client, headers, limit=100, **params))["items"]}


def locs(response: httpx.Response) -> list[list]:
    return [error["loc"] for error in response.json()["errors"]]


async def count_rows(db, model, *where) -> int:
    async with db.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def stored_selectors(db, record_id: str) -> set[tuple[str, str]]:
    async with db.sessionmaker() as session:
        rows = await session.scalars(
            select(RecordSelector).where(RecordSelector.record_id == uuid.UUID(record_id))
        )
        return {(s.type, s.value) for s in rows}


async def patch(client, headers, record_id: str, etag: str | None, body: dict) -> httpx.Response:
    if etag is not None:
        headers = {**headers, "If-Match": etag}
    return await client.patch(f"{API}/{record_id}", json=body, headers=headers)


async def current_etag(client, headers, record_id: str) -> str:
    response = await client.get(f"{API}/{record_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.headers["ETag"]


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


# --- filing ---------------------------------------------------------------------------


async def test_filing_answers_201_with_location_and_etag(client, auth):
    headers = await auth("cross13.police")
    title = f"Go-fast {word()}"
    response = await file_record(client, headers, title)
    record = response.json()
    assert response.headers["Location"].endswith(f"{API}/{record['id']}")
    assert response.headers["ETag"]
    assert record["title"] == title
    assert record["version"] == 1
    assert record["scope"] == "unit"  # the default
    assert record["marking"] == "NP"
    assert record["handling_code"] == "H0"
    assert record["unit_code"] == "CROSS-13"

    located = await client.get(response.headers["Location"], headers=headers)
    assert located.status_code == 200, located.text
    assert located.json()["id"] == record["id"]
    assert located.headers["ETag"] == response.headers["ETag"]


async def test_author_and_agency_come_from_the_caller(client, auth):
    police = await file_record(client, await auth("cross13.police"))
    assert (police.json()["author"], police.json()["author_agency"]) == ("cross13.police", "police")
    douane = await file_record(client, await auth("cross13.douane"))
    assert (douane.json()["author"], douane.json()["author_agency"]) == ("cross13.douane", "douane")
    dnred = await file_record(client, await auth("douane-dnred"))
    assert (dnred.json()["author"], dnred.json()["author_agency"]) == ("douane-dnred", "douane")
    assert dnred.json()["unit_code"] == "CROSS-59"


@pytest.mark.parametrize(
    "extra", [{"author": "ofast.chef"}, {"author_agency": "justice"}, {"version": 7}]
)
async def test_fields_the_caller_may_not_set_are_refused(client, auth, db, extra):
    headers = await auth("cross13.police")
    title = f"Usurpation {word()}"
    response = await client.post(API, json={**record_body(title), **extra}, headers=headers)
    assert response.status_code == 422, response.text
    assert locs(response) == [["body", *extra]]
    assert await count_rows(db, Record, Record.title == title) == 0


async def test_entities_of_every_kind_are_normalised(client, auth, db):
    headers = await auth("cross13.police")
    phone, account, box, ship, car = mobile(), iban(), container(), imo(), plate()
    surname = word("Lefèvre")
    entities = [
        {
            "kind": "person",
            "surname": surname,
            "given_names": "Jean-Hélène",
            "birth_date": "1987-04-09",
            "nationality": "fr",
        },
        {"kind": "organisation", "name": "Société  Générale", "siren": "552 120 222"},
        {"kind": "phone", "number": phone["national"]},
        {"kind": "email", "address": "Jean.Dupont@Example.ORG"},
        {"kind": "vehicle", "plate": car.lower(), "vin": "WVWZZZ1JZXW000001"},
        {"kind": "vessel", "name": "Ocean Star", "imo": f"IMO {ship}"},
        {"kind": "container", "number": f"{box[:4].lower()} {box[4:10]} {box[10]}"},
        {"kind": "bank_account", "iban": grouped(account).lower(), "bic": "bnpa fr pp xxx"},
        {
            "kind": "crypto_wallet",
            "chain": "ethereum",
            "address": "0x52908400098527886E0F7030069857D2E4169EE7",
        },
        {
            "kind": "identity_document",
            "doc_kind": "passport",
            "number": "12ab 34567",
            "country": "fr",
        },
        {
            "kind": "address",
            "line": "12, rue de l'Église",
            "postcode": "13001",
            "commune": "Marseille",
        },
    ]
    record = (await file_record(client, headers, entities=entities)).json()
    assert [e["kind"] for e in record["entities"]] == [e["kind"] for e in entities]

    folded = surname.upper().replace("È", "E")
    assert await stored_selectors(db, record["id"]) == {
        ("person", f"{folded}|JEAN HELENE|1987-04-09"),
        ("person_name", f"{folded}|JEAN HELENE"),
        ("organisation", "SOCIETE GENERALE"),
        ("siren", "552120222"),
        ("phone", phone["e164"]),
        ("email", "jean.dupont@example.org"),
        ("plate", f"FR:{car.replace('-', '')}"),
        ("vin", "WVWZZZ1JZXW000001"),
        ("imo", ship),
        ("container", box),
        ("iban", account),
        ("bic", "BNPAFRPP"),
        ("crypto_wallet", "ethereum:0x52908400098527886e0f7030069857d2e4169ee7"),
        ("identity_document", "FR:PASSPORT:12AB34567"),
        ("address", "12 RUE DE L EGLISE|13001|MARSEILLE|FR"),
    }
    # Searchable by the canonical forms, and by the forms people type.
    for selector in (
        phone["e164"],
        phone["international"],
        account,
        grouped(account),
        box,
        ship,
        f"IMO {ship}",
        car,
        car.replace("-", " "),
    ):
        assert record["id"] in await found_ids(client, headers, selector=selector), selector
    # The person, by name and without the accent.
    assert record["id"] in await found_ids(client, headers, q=folded.lower())


@pytest.mark.parametrize(("kind", "field"), [("bank_account", "iban"), ("container", "number")])
async def test_invalid_identifier_points_at_the_entity_and_stores_nothing(
    client, auth, db, kind, field
):
    headers = await auth("cross13.police")
    title_word = word()
    phone = mobile()
    if kind == "bank_account":
        good = iban()
        wrong = good[:2] + f"{(int(good[2:4]) + 1) % 100:02d}" + good[4:]  # check digits off
        entity = {"kind": kind, "iban": grouped(wrong)}
    else:
        good = container()
        wrong = good[:10] + str((int(good[10]) + 1) % 10)  # check digit off
        entity = {"kind": kind, "number": wrong}
    entities = [
        {"kind": "person", "surname": "Martin", "birth_date": "1990-01-01"},
        {"kind": "phone", "number": phone["national"]},
        entity,
    ]
    response = await client.post(
        API, json=record_body(f"Erreur {title_word}", entities=entities), headers=headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert locs(response) == [["body", "entities", 2, kind, field]]

    assert (await search(client, headers, q=title_word))["items"] == []
    assert (await search(client, headers, selector=phone["national"]))["items"] == []
    assert await count_rows(db, Record, Record.title.contains(title_word)) == 0
    assert await count_rows(db, RecordSelector, RecordSelector.value == phone["e164"]) == 0
    assert (
        await count_rows(
            db, RecordVersion, RecordVersion.snapshot["title"].astext.contains(title_word)
        )
        == 0
    )


@pytest.mark.parametrize("marking", ["SECRET", "TRES_SECRET", "très_secret"])
async def test_classified_markings_are_refused(client, auth, db, marking):
    title = f"Classifié {word()}"
    response = await client.post(
        API, json=record_body(title, marking=marking), headers=await auth("cross13.police")
    )
    assert response.status_code == 422, response.text
    assert locs(response) == [["body", "marking"]]
    assert "accredited" in response.json()["errors"][0]["msg"]
    assert await count_rows(db, Record, Record.title == title) == 0


async def test_markings_np_and_dr_are_accepted(client, auth):
    headers = await auth("cross13.police")
    assert (await file_record(client, headers, marking="DR")).json()["marking"] == "DR"
    assert (await file_record(client, headers, marking="np")).json()["marking"] == "NP"


@pytest.mark.parametrize("note", [None, "", "   "])
async def test_h3_needs_a_handling_note(client, auth, db, note):
    title = f"Restreint {word()}"
    body = record_body(title, handling_code="H3")
    if note is not None:
        body["handling_note"] = note
    response = await client.post(API, json=body, headers=await auth("cross13.police"))
    assert response.status_code == 422, response.text
    assert ["body", "handling_note"] in [e["loc"] for e in response.json()["errors"]]
    assert await count_rows(db, Record, Record.title == title) == 0


async def test_h3_with_a_note_is_filed(client, auth):
    record = (
        await file_record(
            client,
            await auth("cross13.police"),
            handling_code="H3",
            handling_note="Pas de diffusion hors CROSS sans accord.",
        )
    ).json()
    assert (record["handling_code"], record["handling_note"]) == (
        "H3",
        "Pas de diffusion hors CROSS sans accord.",
    )


async def test_tags_are_bounded_not_cut(client, auth, db):
    headers = await auth("cross13.police")
    title = f"Étiquettes {word()}"
    for tags in (["x" * 81], ["port", ""], [f"t{i}" for i in range(51)]):
        response = await client.post(API, json=record_body(title, tags=tags), headers=headers)
        assert response.status_code == 422, response.text
        assert locs(response)[0][:2] == ["body", "tags"]
    assert await count_rows(db, Record, Record.title == title) == 0

    filed = await file_record(client, headers, tags=["y" * 80, " port ", "port"])
    record_id = filed.json()["id"]
    assert (await client.get(f"{API}/{record_id}", headers=headers)).json()["tags"] == [
        "port",
        "y" * 80,
    ]
    too_long = await patch(client, headers, record_id, filed.headers["ETag"], {"tags": ["z" * 81]})
    assert too_long.status_code == 422, too_long.text
    assert locs(too_long) == [["body", "tags", 0]]


async def test_member_of_two_units_names_the_unit(client, auth, new_user):
    admin = await auth("admin")
    units = await unit_ids(client, admin)
    user, password = await new_user("police", "CROSS-13", "officer")
    added = await client.put(
        f"/api/v1/admin/users/{user['id']}/memberships",
        headers=admin,
        json={"unit_id": units["CROSS-83"], "role": "officer"},
    )
    assert added.status_code == 200, added.text
    headers = await user_headers(client, user, password)

    title = f"Deux unités {word()}"
    response = await client.post(API, json=record_body(title), headers=headers)
    assert response.status_code == 422, response.text
    assert locs(response) == [["body", "unit_id"]]

    foreign = await client.post(
        API, json=record_body(title, unit_id=units["CROSS-59"]), headers=headers
    )
    assert foreign.status_code == 422, foreign.text
    assert locs(foreign) == [["body", "unit_id"]]

    filed = await file_record(client, headers, title, unit_id=units["CROSS-83"])
    assert (filed.json()["unit_id"], filed.json()["unit_code"]) == (units["CROSS-83"], "CROSS-83")
    assert filed.json()["author"] == user["username"]


async def test_unit_id_must_be_one_of_the_callers_units(client, auth, db):
    headers = await auth("cross13.police")
    units = await unit_ids(client, headers)
    title = f"Autre unité {word()}"
    for unit in ("CROSS-83", "ANT-MARSEILLE"):
        response = await client.post(
            API, json=record_body(title, unit_id=units[unit]), headers=headers
        )
        assert response.status_code == 422, response.text
        assert locs(response) == [["body", "unit_id"]]
    unknown = await client.post(
        API, json=record_body(title, unit_id=str(uuid.uuid4())), headers=headers
    )
    assert unknown.status_code == 422, unknown.text
    assert await count_rows(db, Record, Record.title == title) == 0

    own = await file_record(client, headers, unit_id=units["CROSS-13"])
    assert own.json()["unit_code"] == "CROSS-13"


async def test_service_client_cannot_file_above_its_maximum_marking(client, auth, db):
    headers = await auth("douane-dnred")
    title = f"DNRED {word()}"
    response = await client.post(API, json=record_body(title, marking="DR"), headers=headers)
    assert response.status_code == 422, response.text
    assert locs(response) == [["body", "marking"]]
    assert await count_rows(db, Record, Record.title == title) == 0


async def test_service_client_cannot_raise_the_marking_by_editing(client, auth):
    headers = await auth("douane-dnred")
    response = await file_record(client, headers)
    changed = await patch(
        client, headers, response.json()["id"], response.headers["ETag"], {"marking": "DR"}
    )
    assert changed.status_code == 422, changed.text
    assert locs(changed) == [["body", "marking"]]
    assert (await client.get(f"{API}/{response.json()['id']}", headers=headers)).json()[
        "marking"
    ] == "NP"


@pytest.mark.parametrize("persona", ["admin", "auditor"])
async def test_platform_roles_cannot_file(client, auth, db, persona):
    title = f"Plateforme {word()}"
    response = await client.post(API, json=record_body(title), headers=await auth(persona))
    assert response.status_code == 403, response.text
    assert await count_rows(db, Record, Record.title == title) == 0


# --- reading and editing --------------------------------------------------------------


async def test_edit_needs_the_current_etag(client, auth):
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    read = await client.get(f"{API}/{record_id}", headers=headers)
    assert read.status_code == 200
    first = read.headers["ETag"]

    missing = await patch(client, headers, record_id, None, {"title": "Sans If-Match"})
    assert missing.status_code == 428, missing.text
    assert missing.json()["code"] == "precondition_required"

    changed = await patch(client, headers, record_id, first, {"title": "Titre corrigé"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert changed.json()["title"] == "Titre corrigé"
    second = changed.headers["ETag"]
    assert second != first
    assert await current_etag(client, headers, record_id) == second

    stale = await patch(client, headers, record_id, first, {"title": "Écrasement"})
    assert stale.status_code == 412, stale.text
    assert stale.json()["code"] == "precondition_failed"
    unknown = await patch(client, headers, record_id, '"no-such-version"', {"title": "Autre"})
    assert unknown.status_code == 412, unknown.text

    after = (await client.get(f"{API}/{record_id}", headers=headers)).json()
    assert (after["title"], after["version"]) == ("Titre corrigé", 2)


async def test_concurrent_edits_with_one_etag_make_one_version(client, auth):
    police, gendarme = await auth("cross13.police"), await auth("cross13.gendarme")
    filed = await file_record(client, police)
    record_id, etag = filed.json()["id"], filed.headers["ETag"]
    responses = await asyncio.gather(
        patch(client, police, record_id, etag, {"title": "Édition de la police"}),
        patch(client, gendarme, record_id, etag, {"title": "Édition de la gendarmerie"}),
    )
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    record = (await client.get(f"{API}/{record_id}", headers=police)).json()
    assert (record["version"], record["title"]) == (2, winner["title"])
    history = (await client.get(f"{API}/{record_id}/history", headers=police)).json()
    assert [v["version"] for v in history] == [1, 2]


async def test_history_keeps_every_version(client, auth):
    police, gendarme = await auth("cross13.police"), await auth("cross13.gendarme")
    filed = await file_record(client, police, "Version une", tags=["port"])
    record_id = filed.json()["id"]
    second = await patch(
        client,
        police,
        record_id,
        filed.headers["ETag"],
        {"title": "Version deux", "drug_types": ["heroin"]},
    )
    assert second.status_code == 200, second.text
    third = await patch(
        client,
        gendarme,
        record_id,
        second.headers["ETag"],
        {"narrative": "Complément du gendarme.", "source_reliability": "A"},
    )
    assert third.status_code == 200, third.text
    assert third.json()["version"] == 3

    response = await client.get(f"{API}/{record_id}/history", headers=gendarme)
    assert response.status_code == 200, response.text
    history = response.json()
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [v["changed_by"] for v in history] == [
        "cross13.police",
        "cross13.police",
        "cross13.gendarme",
    ]
    assert [v["snapshot"]["title"] for v in history] == [
        "Version une",
        "Version deux",
        "Version deux",
    ]
    assert [v["snapshot"]["drug_types"] for v in history] == [["cocaine"], ["heroin"], ["heroin"]]
    assert [v["snapshot"]["source_reliability"] for v in history] == ["B", "B", "A"]
    assert history[2]["snapshot"]["narrative"] == "Complément du gendarme."
    assert history[0]["snapshot"]["tags"] == ["port"]
    assert all(v["changed_at"] for v in history)


async def test_edit_replaces_entities_and_reindexes(client, auth):
    headers = await auth("cross13.police")
    old, new = mobile(), mobile()
    filed = await file_record(
        client, headers, entities=[{"kind": "phone", "number": old["national"]}]
    )
    record_id = filed.json()["id"]
    changed = await patch(
        client,
        headers,
        record_id,
        filed.headers["ETag"],
        {"entities": [{"kind": "phone", "number": new["international"]}]},
    )
    assert changed.status_code == 200, changed.text
    assert record_id not in await found_ids(client, headers, selector=old["national"])
    assert record_id in await found_ids(client, headers, selector=new["national"])


async def test_edit_keeps_text_search_on_entity_names(client, auth):
    headers = await auth("cross13.police")
    surname = word("Dupré")
    filed = await file_record(client, headers, entities=[{"kind": "person", "surname": surname}])
    record_id = filed.json()["id"]
    changed = await patch(
        client, headers, record_id, filed.headers["ETag"], {"title": "Titre changé"}
    )
    assert changed.status_code == 200, changed.text
    assert record_id in await found_ids(client, headers, q=surname.replace("é", "e"))


async def test_invalid_edit_changes_nothing(client, auth):
    headers = await auth("cross13.police")
    filed = await file_record(client, headers)
    record_id, etag = filed.json()["id"], filed.headers["ETag"]
    h3 = await patch(client, headers, record_id, etag, {"handling_code": "H3"})
    assert h3.status_code == 422, h3.text
    assert "handling_note" in json.dumps(h3.json()["errors"])
    secret = await patch(client, headers, record_id, etag, {"marking": "SECRET"})
    assert secret.status_code == 422, secret.text
    assert locs(secret) == [["body", "marking"]]
    bad_entity = await patch(
        client,
        headers,
        record_id,
        etag,
        {"entities": [{"kind": "container", "number": "CSQU3054384"}]},
    )
    assert bad_entity.status_code == 422, bad_entity.text
    assert locs(bad_entity) == [["body", "entities", 0, "container", "number"]]
    extra = await patch(client, headers, record_id, etag, {"author_agency": "justice"})
    assert extra.status_code == 422, extra.text

    record = (await client.get(f"{API}/{record_id}", headers=headers)).json()
    assert (record["version"], record["handling_code"], record["author_agency"]) == (
        1,
        "H0",
        "police",
    )
    assert len((await client.get(f"{API}/{record_id}/history", headers=headers)).json()) == 1


async def test_other_units_may_read_a_network_record_but_not_edit_it(client, auth):
    author, other = await auth("cross13.police"), await auth("cross83.police")
    record_id = (await file_record(client, author, scope="network")).json()["id"]
    read = await client.get(f"{API}/{record_id}", headers=other)
    assert read.status_code == 200, read.text
    response = await patch(client, other, record_id, read.headers["ETag"], {"title": "Intrus"})
    assert response.status_code == 403, response.text
    upload = await client.post(
        f"{API}/{record_id}/attachments",
        headers=other,
        files={"file": ("x.pdf", PDF, "application/pdf")},
    )
    assert upload.status_code == 403, upload.text
    assert (await client.get(f"{API}/{record_id}", headers=author)).json()["version"] == 1


async def test_analysts_edit_only_their_own_records(client, auth, new_user):
    user, password = await new_user("police", "CROSS-13", "analyst")
    analyst = await user_headers(client, user, password)
    others = (await file_record(client, await auth("cross13.police"))).json()["id"]
    etag = await current_etag(client, analyst, others)  # the analyst reads it
    refused = await patch(client, analyst, others, etag, {"title": "Réécrit par l'analyste"})
    assert refused.status_code == 403, refused.text

    own = await file_record(client, analyst)
    changed = await patch(
        client, analyst, own.json()["id"], own.headers["ETag"], {"title": "Corrigé par l'analyste"}
    )
    assert changed.status_code == 200, changed.text


async def test_scope_is_widened_by_the_author_and_narrowed_by_a_supervisor(client, auth):
    author, colleague = await auth("cross13.police"), await auth("cross13.gendarme")
    chef = await auth("cross13.chef")
    filed = await file_record(client, author, scope="unit")
    record_id = filed.json()["id"]

    widened = await patch(client, author, record_id, filed.headers["ETag"], {"scope": "chain"})
    assert widened.status_code == 200, widened.text
    assert widened.json()["scope"] == "chain"
    etag = widened.headers["ETag"]

    by_colleague = await patch(client, colleague, record_id, etag, {"scope": "network"})
    assert by_colleague.status_code == 403, by_colleague.text
    narrowed_by_author = await patch(client, author, record_id, etag, {"scope": "unit"})
    assert narrowed_by_author.status_code == 403, narrowed_by_author.text
    assert (await client.get(f"{API}/{record_id}", headers=author)).json()["scope"] == "chain"

    by_chef = await patch(client, chef, record_id, etag, {"scope": "unit"})
    assert by_chef.status_code == 200, by_chef.text
    assert (by_chef.json()["scope"], by_chef.json()["version"]) == ("unit", 3)
    widened_by_chef = await patch(
        client, chef, record_id, by_chef.headers["ETag"], {"scope": "network"}
    )
    assert widened_by_chef.status_code == 200, widened_by_chef.text


async def test_records_are_never_deleted(client, auth):
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    response = await client.delete(f"{API}/{record_id}", headers=headers)
    assert response.status_code == 405, response.text
    assert (await client.get(f"{API}/{record_id}", headers=headers)).status_code == 200


# --- search ---------------------------------------------------------------------------


async def test_text_search_ignores_accents_and_case(client, auth):
    headers = await auth("cross13.police")
    marker = word()
    resin = await file_record(
        client, headers, f"Livraison {marker}", narrative="Deux kilos de résine saisis au péage."
    )
    other = await file_record(
        client, headers, f"Livraison {marker}", narrative="Deux kilos de cocaïne saisis au péage."
    )
    resin_id, other_id = resin.json()["id"], other.json()["id"]
    assert await found_ids(client, headers, q=marker) == {resin_id, other_id}
    for query in (f"resine {marker}", f"RÉSINE {marker}", f"Résine {marker.upper()}"):
        assert await found_ids(client, headers, q=query) == {resin_id}, query
    assert await found_ids(client, headers, q=f"COCAINE {marker}") == {other_id}
    assert await found_ids(client, headers, q=f"héroïne {marker}") == set()


async def test_text_search_covers_entity_names(client, auth):
    headers = await auth("cross13.police")
    surname, alias = word("Benoît"), word("Zé")
    record_id = (
        await file_record(
            client,
            headers,
            entities=[
                {"kind": "person", "surname": surname, "given_names": "Karim", "aliases": [alias]},
            ],
        )
    ).json()["id"]
    assert await found_ids(client, headers, q=surname) == {record_id}
    assert await found_ids(client, headers, q=surname.upper().replace("Î", "I")) == {record_id}
    assert await found_ids(client, headers, q=alias.lower().replace("é", "e")) == {record_id}


async def test_selector_search_normalises_what_is_typed(client, auth):
    headers = await auth("cross13.police")
    phone, account = mobile(), iban()
    record_id = (
        await file_record(
            client,
            headers,
            entities=[
                {"kind": "phone", "number": phone["international"]},
                {"kind": "bank_account", "iban": account},
            ],
        )
    ).json()["id"]
    for typed in (
        phone["national"],
        phone["national"].replace(" ", "."),
        phone["e164"],
        "0033" + phone["e164"][3:],
    ):
        assert await found_ids(client, headers, selector=typed) == {record_id}, typed
    for typed in (grouped(account), grouped(account).lower(), f"  {account}  "):
        assert await found_ids(client, headers, selector=typed) == {record_id}, typed


@pytest.mark.parametrize("selector", ["pas un identifiant", "12", "?!"])
async def test_unrecognised_selector_is_a_422(client, auth, selector):
    response = await client.get(
        API, headers={**await auth("cross13.police"), **PURPOSE}, params={"selector": selector}
    )
    assert response.status_code == 422, response.text
    assert locs(response) == [["query", "selector"]]


@pytest.fixture(scope="module")
async def filtered(client, auth):
    """Three records sharing a word: two from CROSS-13, one `network` record from CROSS-83,
    as seen by cross13.police. The second happened just after midnight, Paris time, on
    1 July (still 30 June in UTC)."""
    marker = word()
    a = await file_record(
        client,
        await auth("cross13.police"),
        f"Filtre {marker} A",
        drug_types=["cocaine", "crack"],
        occurred_at="2025-03-10T10:00:00+01:00",
        source_reliability="A",
        handling_code="H0",
    )
    b = await file_record(
        client,
        await auth("cross13.gendarme"),
        f"Filtre {marker} B",
        drug_types=["cannabis_resin"],
        occurred_at="2025-07-01T00:30:00+02:00",
        source_reliability="C",
        handling_code="H1",
    )
    c = await file_record(
        client,
        await auth("cross83.police"),
        f"Filtre {marker} C",
        drug_types=["cannabis_resin", "heroin"],
        scope="network",
        occurred_at="2025-09-01T12:00:00+02:00",
        source_reliability="B",
        handling_code="H2",
    )
    return marker, {"A": a.json()["id"], "B": b.json()["id"], "C": c.json()["id"]}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "ABC"),
        ({"drug_type": "cannabis_resin"}, "BC"),
        ({"drug_type": "crack"}, "A"),
        ({"drug_type": "mdma"}, ""),
        ({"unit": "CROSS-83"}, "C"),
        ({"unit": "CROSS-13"}, "AB"),
        ({"occurred_from": "2025-05-01T00:00:00+02:00"}, "BC"),
        ({"occurred_to": "2025-08-01T00:00:00+02:00"}, "AB"),
        (
            {"occurred_from": "2025-05-01T00:00:00+02:00", "occurred_to": "2025-08-01T00:00:00Z"},
            "B",
        ),
        ({"source_reliability": "C"}, "B"),
        ({"source_reliability": "X"}, ""),
        ({"handling_code": "H2"}, "C"),
        ({"handling_code": "H1", "drug_type": "cannabis_resin"}, "B"),
    ],
)
async def test_search_filters(client, auth, filtered, params, expected):
    marker, ids = filtered
    headers = await auth("cross13.police")
    query = dict(params)
    if "unit" in query:
        query["unit_id"] = (await unit_ids(client, headers))[query.pop("unit")]
    assert await found_ids(client, headers, q=marker, **query) == {ids[k] for k in expected}


@pytest.mark.parametrize(
    "params",
    [
        {"drug_type": "tobacco"},
        {"source_reliability": "D"},
        {"handling_code": "H4"},
        {"unit_id": "CROSS-13"},
        {"occurred_from": "hier"},
    ],
)
async def test_invalid_filters_are_422(client, auth, params):
    response = await client.get(API, headers=await auth("cross13.police"), params=params)
    assert response.status_code == 422, response.text
    assert locs(response)[0] == ["query", *params]


async def test_facets_count_every_visible_match(client, auth, filtered):
    marker, _ = filtered
    headers = await auth("cross13.police")
    page = await search(client, headers, q=marker, facets="true", limit=1)
    assert len(page["items"]) == 1  # facets are over every match, not the page
    assert page["facets"] == {
        "drug_type": {"cannabis_resin": 2, "cocaine": 1, "crack": 1, "heroin": 1},
        "unit": {"CROSS-13": 2, "CROSS-83": 1},
        "month": {"2025-03": 1, "2025-07": 1, "2025-09": 1},
    }
    resin = await search(client, headers, q=marker, facets="true", drug_type="cannabis_resin")
    assert resin["facets"]["unit"] == {"CROSS-13": 1, "CROSS-83": 1}
    assert resin["facets"]["drug_type"] == {"cannabis_resin": 2, "heroin": 1}
    assert (await search(client, headers, q=marker))["facets"] is None


async def test_facets_leave_out_what_the_caller_may_not_see(client, auth, filtered):
    marker, _ = filtered
    page = await search(client, await auth("cross83.police"), q=marker, facets="true")
    assert page["facets"] == {
        "drug_type": {"cannabis_resin": 1, "heroin": 1},
        "unit": {"CROSS-83": 1},
        "month": {"2025-09": 1},
    }


@pytest.mark.parametrize("limit", [0, -1, 101])
async def test_limit_bounds(client, auth, limit):
    response = await client.get(API, headers=await auth("cross13.police"), params={"limit": limit})
    assert response.status_code == 422, response.text
    assert locs(response) == [["query", "limit"]]


def b64(data: str) -> str:
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        b64("[1]"),
        b64('{"x": 1}'),
        b64('{"s": "12"}'),
        b64('{"s": 1.5}'),
        b64('{"s": true}'),
        b64('{"s": null}'),
        b64('{"s": 100000000000000000000000000}'),
        b64("\xff\xfe"),
    ],
)
async def test_bad_cursor_is_a_422(client, auth, cursor):
    response = await client.get(
        API, headers=await auth("cross13.police"), params={"cursor": cursor}
    )
    assert response.status_code == 422, response.text
    assert locs(response) == [["query", "cursor"]]


@pytest.fixture(params=["from_matches", "walking_newest_first"])
def search_plan(request, monkeypatch):
    """Text search builds a page from the term's matches when they are few, else walks the
    records newest first: both ways must give the same pages."""
    if request.param == "walking_newest_first":
        monkeypatch.setattr(records_service, "FEW_MATCHES", 0)
    return request.param


async def test_cursor_pages_are_stable_while_records_are_filed(client, auth, search_plan):
    headers = await auth("cross13.police")
    marker = word()
    originals = [
        (await file_record(client, headers, f"Page {marker} {i}")).json()["id"] for i in range(7)
    ]

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"q": marker, "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await search(client, headers, **params)
        assert len(page["items"]) <= 3
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
        for i in range(2):
            await file_record(client, headers, f"Page {marker} nouveau {pages} {i}")

    assert len(seen) == len(set(seen)), "a record came twice"
    assert set(originals) <= set(seen)
    assert seen[: len(originals)] == originals[::-1]  # newest first
    assert len(await found_ids(client, headers, q=marker)) == 7 + 2 * (pages - 1)


async def test_last_page_has_no_cursor(client, auth):
    headers = await auth("cross13.police")
    marker = word()
    for i in range(3):
        await file_record(client, headers, f"Fin {marker} {i}")
    first = await search(client, headers, q=marker, limit=3)
    assert len(first["items"]) == 3
    assert first["next_cursor"] is None
    second = await search(client, headers, q=marker, limit=2)
    assert len(second["items"]) == 2 and second["next_cursor"]
    last = await search(client, headers, q=marker, limit=2, cursor=second["next_cursor"])
    assert len(last["items"]) == 1 and last["next_cursor"] is None


# --- attachments ----------------------------------------------------------------------


async def upload(
    client,
    headers,
    record_id,
    content: bytes,
    filename: str = "pv.pdf",
    content_type: str = "application/pdf",
) -> httpx.Response:
    return await client.post(
        f"{API}/{record_id}/attachments",
        headers=headers,
        files={"file": (filename, content, content_type)},
    )


async def test_pdf_upload_and_download(client, auth):
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    content = PDF + word().encode()
    response = await upload(client, headers, record_id, content, "procès-verbal.pdf")
    assert response.status_code == 201, response.text
    attachment = response.json()
    assert attachment["sha256"] == hashlib.sha256(content).hexdigest()
    assert attachment["size"] == len(content)
    assert attachment["content_type"] == "application/pdf"
    assert attachment["filename"] == "procès-verbal.pdf"
    assert attachment["uploaded_by"] == "cross13.police"

    record = (await client.get(f"{API}/{record_id}", headers=headers)).json()
    assert [a["id"] for a in record["attachments"]] == [attachment["id"]]

    colleague = await auth("cross13.douane")
    download = await client.get(
        f"{API}/{record_id}/attachments/{attachment['id']}", headers=colleague
    )
    assert download.status_code == 200, download.text
    assert download.content == content
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["x-content-type-options"] == "nosniff"
    disposition = download.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''proc%C3%A8s-verbal.pdf" in disposition


async def test_upload_type_is_sniffed_from_content(client, auth):
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    # A text file declared as a PDF is stored as what it is.
    text = f"Procès-verbal {word()}".encode()
    response = await upload(client, headers, record_id, text, "pv.pdf", "application/pdf")
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == "text/plain"


async def raw_upload(
    client, headers, record_id, quoted_filename: bytes, content: bytes
) -> httpx.Response:
    """A multipart upload built by hand: httpx would percent-encode a quote in the name,
    a browser or another client may send it backslash-escaped."""
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="'
        + quoted_filename
        + b'"\r\n'
        + b"Content-Type: application/pdf\r\n\r\n"
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return await client.post(
        f"{API}/{record_id}/attachments",
        content=body,
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


@pytest.mark.parametrize(
    "quoted_filename",
    [b'../../etc/pass\\"wd.pdf', b'..\\..\\etc\\pass\\"wd.pdf', b"/etc/pass%22wd.pdf"],
    ids=["escaped-quote", "windows-path", "percent-encoded-quote"],
)
async def test_download_filename_is_safe(client, auth, quoted_filename):
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    response = await raw_upload(client, headers, record_id, quoted_filename, PDF + word().encode())
    assert response.status_code == 201, response.text
    attachment = response.json()

    download = await client.get(
        f"{API}/{record_id}/attachments/{attachment['id']}", headers=headers
    )
    assert download.status_code == 200, download.text
    disposition = download.headers["content-disposition"]
    match = re.fullmatch(r"attachment; filename=\"([^\"]*)\"; filename\*=UTF-8''(\S+)", disposition)
    assert match, disposition
    for name in (attachment["filename"], match.group(1), unquote(match.group(2))):
        assert name.endswith("wd.pdf"), (name, disposition)
        assert not {"/", "\\", '"'} & set(name), (name, disposition)
        assert ".." not in name, (name, disposition)
    assert download.headers["x-content-type-options"] == "nosniff"


async def test_executable_is_refused(client, auth, settings):
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    before = files_under(Path(settings.data_dir) / "attachments")
    response = await upload(client, headers, record_id, EXE + word().encode(), "rapport.pdf")
    assert response.status_code == 415, response.text
    assert files_under(Path(settings.data_dir) / "attachments") == before
    assert (await client.get(f"{API}/{record_id}", headers=headers)).json()["attachments"] == []


async def test_oversized_upload_is_413_and_leaves_nothing(client, auth, settings, db, tmp_path):
    small = create_app(
        settings.model_copy(update={"attachment_max_bytes": 1024, "data_dir": tmp_path}), db=db
    )
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    transport = httpx.ASGITransport(app=small)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        too_big = await upload(other, headers, record_id, PDF + b"0" * 2000)
        assert too_big.status_code == 413, too_big.text
        assert too_big.json()["code"] == "payload_too_large"
        assert files_under(tmp_path / "attachments") == []
        assert (
            await count_rows(
                db, RecordAttachment, RecordAttachment.record_id == uuid.UUID(record_id)
            )
            == 0
        )

        content = PDF + b"0" * (1024 - len(PDF))  # exactly at the limit
        fits = await upload(other, headers, record_id, content)
        assert fits.status_code == 201, fits.text
    stored = files_under(tmp_path / "attachments")
    assert len(stored) == 1
    assert stored[0].read_bytes() == content


async def test_identical_content_is_stored_once(client, auth, settings, db):
    headers = await auth("cross13.police")
    first_id = (await file_record(client, headers)).json()["id"]
    second_id = (await file_record(client, headers)).json()["id"]
    folder = Path(settings.data_dir) / "attachments"
    content = PDF + word().encode()
    before = len(files_under(folder))

    one = await upload(client, headers, first_id, content, "a.pdf")
    assert one.status_code == 201, one.text
    assert len(files_under(folder)) == before + 1
    two = await upload(client, headers, second_id, content, "b.pdf")
    assert two.status_code == 201, two.text
    assert len(files_under(folder)) == before + 1
    assert one.json()["sha256"] == two.json()["sha256"]
    assert one.json()["id"] != two.json()["id"]
    assert [p for p in files_under(folder) if p.read_bytes() == content] != []
    assert len([p for p in files_under(folder) if p.read_bytes() == content]) == 1
    for record_id, attachment in ((first_id, one.json()), (second_id, two.json())):
        download = await client.get(
            f"{API}/{record_id}/attachments/{attachment['id']}", headers=headers
        )
        assert download.content == content
        assert attachment["filename"] in download.headers["content-disposition"]
    # The attachment of one record is not reachable through the other.
    crossed = await client.get(f"{API}/{first_id}/attachments/{two.json()['id']}", headers=headers)
    assert crossed.status_code == 404


async def test_longest_entities_are_filed_and_found(client, auth):
    """Names and addresses at their maximum length still make selectors that are stored
    and searchable (no truncation, no server error)."""
    headers = await auth("cross13.police")
    surname, given = "Ä" * 200, "É" * 200
    entities = [
        {"kind": "person", "surname": surname, "given_names": given, "birth_date": "1990-01-02"},
        {"kind": "address", "line": "B" * 200, "postcode": "13002", "commune": "C" * 200},
    ]
    filed = await file_record(client, headers, entities=entities)
    assert filed.status_code == 201
    found = await search(client, headers, q="A" * 200)
    assert filed.json()["id"] in {i["id"] for i in found["items"]}


async def test_request_bodies_are_capped_while_they_stream(client, auth, settings, db, tmp_path):
    """Far beyond the attachment limit, a body is refused before it is received whole:
    at once when its length is declared, as soon as it passes the cap when chunked."""
    small = create_app(
        settings.model_copy(update={"attachment_max_bytes": 1024, "data_dir": tmp_path}), db=db
    )
    headers = await auth("cross13.police")
    record_id = (await file_record(client, headers)).json()["id"]
    sent = 0

    async def chunks():
        nonlocal sent
        yield (
            b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n" + PDF
        )
        for _ in range(100):
            sent += 64 * 1024
            yield b"0" * (64 * 1024)

    transport = httpx.ASGITransport(app=small)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        declared = await upload(other, headers, record_id, PDF + b"0" * (3 * 1024 * 1024))
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"
        assert declared.json()["code"] == "payload_too_large"

        chunked = await other.post(
            f"{API}/{record_id}/attachments",
            content=chunks(),
            headers={**headers, "content-type": "multipart/form-data; boundary=x"},
        )
        assert chunked.status_code == 413, chunked.text
        assert chunked.json()["code"] == "payload_too_large"
        assert sent < 100 * 64 * 1024
    assert files_under(tmp_path / "attachments") == []
