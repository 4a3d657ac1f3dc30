"""Cases and escalation: the lifecycle CROSS-13 → ANT-MARSEILLE → OFAST."""

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.models import Escalation
from tests.conftest import add_membership, record_body, unit_ids, user_headers

API = "/api/v1"
# A purpose of access (a justification): reading a record seen only through a case grant
# needs one. Header values are ASCII, hence no accents.
PURPOSE = {"X-Purpose": "Verification dans le cadre de l'enquete"}


async def file(client, headers, title, **changes) -> str:
    response = await client.post(
        f"{API}/records", json=record_body(title, **changes), headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def open_case(client, headers, title="Filière conteneurs") -> dict:
    response = await client.post(
        f"{API}/cases", json={"title": title, "priority": "high"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_full_lifecycle_up_to_ofast(client, auth):
    police, douane, chef = (
        await auth("cross13.police"),
        await auth("cross13.douane"),
        await auth("cross13.chef"),
    )
    marseille, ofast = await auth("marseille.chef"), await auth("ofast.chef")
    marker = "filiere" + uuid.uuid4().hex[:8]
    shared = await file(client, police, f"Conteneur {marker}")
    withheld = await file(client, douane, f"Source douane {marker}", scope="agency")
    restricted = await file(client, police, f"Source protégée {marker}", handling_code="H2")

    case = await open_case(client, chef)
    assert case["reference"].startswith("CROSS13-")
    for record_id in (shared, withheld, restricted):
        linked = await client.post(
            f"{API}/cases/{case['id']}/records",
            json={"record_id": record_id},
            headers=douane if record_id == withheld else chef,
        )
        assert linked.status_code == 204, linked.text

    # ANT-MARSEILLE sees nothing before the escalation.
    assert (await client.get(f"{API}/cases/{case['id']}", headers=marseille)).status_code == 404

    up = await client.post(
        f"{API}/cases/{case['id']}/escalations",
        json={"justification": "Dimension régionale", "priority": "urgent"},
        headers=chef,
    )
    assert up.status_code == 201, up.text
    assert up.json()["to_unit_code"] == "ANT-MARSEILLE"
    again = await client.post(
        f"{API}/cases/{case['id']}/escalations",
        json={"justification": "Encore", "priority": "high"},
        headers=chef,
    )
    assert again.status_code == 409

    queue = await client.get(f"{API}/escalations", params={"status": "pending"}, headers=marseille)
    mine = [e for e in queue.json()["items"] if e["case_id"] == case["id"]]
    assert len(mine) == 1 and mine[0]["overdue"] is False
    accepted = await client.post(
        f"{API}/escalations/{mine[0]['id']}/decision",
        json={"decision": "accept", "note": "Pris en charge"},
        headers=marseille,
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"

    to_ofast = await client.post(
        f"{API}/cases/{case['id']}/escalations",
        json={"justification": "Dimension nationale", "priority": "high"},
        headers=marseille,
    )
    assert to_ofast.status_code == 201, to_ofast.text
    assert to_ofast.json()["to_unit_code"] == "OFAST"
    decided = await client.post(
        f"{API}/escalations/{to_ofast.json()['id']}/decision",
        json={"decision": "accept", "note": "Saisine OFAST"},
        headers=ofast,
    )
    assert decided.status_code == 200, decided.text

    seen = await client.get(f"{API}/cases/{case['id']}", headers=ofast)
    assert seen.status_code == 200
    body = seen.json()
    assert body["unit_code"] == "OFAST" and body["status"] == "open"
    by_id = {r["record_id"]: r for r in body["records"]}
    assert by_id[shared]["withheld"] is False
    assert by_id[withheld]["withheld"] is True and by_id[withheld]["record"] is None
    assert by_id[restricted]["withheld"] is True
    assert "CROSS-13" in by_id[withheld]["message"]
    assert marker not in seen.text.replace(by_id[shared]["record"]["title"], "")
    assert (await get_record(client, ofast, shared)).status_code == 200
    assert (await get_record(client, ofast, withheld)).status_code == 404

    # The origin keeps access and was notified of each decision.
    assert (await client.get(f"{API}/cases/{case['id']}", headers=chef)).status_code == 200
    notes = await client.get(f"{API}/notifications", headers=chef)
    decisions = sorted(
        n["title"].rsplit(" par ", 1)[1]
        for n in notes.json()["items"]
        if n["case_id"] == case["id"] and n["kind"] == "escalation_decided"
    )
    assert decisions == ["ANT-MARSEILLE", "OFAST"]
    actions = [
        e["action"]
        for e in (await client.get(f"{API}/cases/{case['id']}/timeline", headers=chef)).json()
    ]
    assert actions.count("escalation_accepted") == 2 and "escalated" in actions


async def test_return_and_decline_go_back_to_the_origin(client, auth):
    chef, marseille = await auth("cross13.chef"), await auth("marseille.chef")
    case = await open_case(client, chef)
    units = await unit_ids(client, chef)
    for decision in ("return", "decline"):
        up = await client.post(
            f"{API}/cases/{case['id']}/escalations",
            json={"justification": "Avis", "priority": "routine"},
            headers=chef,
        )
        assert up.status_code == 201, up.text
        done = await client.post(
            f"{API}/escalations/{up.json()['id']}/decision",
            json={"decision": decision, "note": "Compléter le dossier"},
            headers=marseille,
        )
        assert done.status_code == 200, done.text
        back = (await client.get(f"{API}/cases/{case['id']}", headers=chef)).json()
        assert back["status"] == "open" and back["unit_id"] == units["CROSS-13"]
        assert (await client.get(f"{API}/cases/{case['id']}", headers=marseille)).status_code == 404


# --------------------------------------------------------------------------------------
# Helpers for the tests below.

REFERENCE = re.compile(r"^(?P<code>[A-Z0-9]+)-(?P<year>\d{4})-(?P<number>\d{4})$")

# Every demo persona; admin and auditor hold no unit, douane-dnred is a service client.
ALL_PERSONAS = [
    "admin",
    "auditor",
    "ofast.chef",
    "ofast.analyste",
    "marseille.chef",
    "lille.chef",
    "cross13.chef",
    "cross13.police",
    "cross13.gendarme",
    "cross13.douane",
    "cross83.police",
    "cross59.douane",
    "douane-dnred",
]
CROSS13 = {"cross13.chef", "cross13.police", "cross13.gendarme", "cross13.douane"}


def number(reference: str) -> int:
    match = REFERENCE.match(reference)
    assert match, reference
    return int(match["number"])


def loc(response) -> list:
    """Where the first validation error of a 422 points."""
    assert response.status_code == 422, response.text
    return response.json()["errors"][0]["loc"]


async def user_ids(client, auth) -> dict[str, str]:
    """Username -> id for every account."""
    response = await client.get(f"{API}/admin/users", headers=await auth("admin"))
    assert response.status_code == 200, response.text
    return {u["username"]: u["id"] for u in response.json()}


async def units(client, auth) -> dict[str, str]:
    return await unit_ids(client, await auth("cross13.chef"))


async def get_case(client, headers, case_id):
    return await client.get(f"{API}/cases/{case_id}", headers=headers)


async def get_record(client, headers, record_id):
    """GET a record with a purpose of access, so the answer is about visibility (200 or
    404), never the purpose rule (428)."""
    return await client.get(f"{API}/records/{record_id}", headers={**headers, **PURPOSE})


async def put_member(client, headers, case_id, user_id, **body):
    return await client.put(f"{API}/cases/{case_id}/team/{user_id}", json=body, headers=headers)


async def link(client, headers, case_id, record_id):
    return await client.post(
        f"{API}/cases/{case_id}/records", json={"record_id": record_id}, headers=headers
    )


async def escalate(client, headers, case_id, priority="routine", **body):
    return await client.post(
        f"{API}/cases/{case_id}/escalations",
        json={"justification": "Dimension régionale", "priority": priority, **body},
        headers=headers,
    )


async def decide(client, headers, escalation_id, decision, note="Décision motivée"):
    return await client.post(
        f"{API}/escalations/{escalation_id}/decision",
        json={"decision": decision, "note": note},
        headers=headers,
    )


async def timeline(client, headers, case_id) -> list[dict]:
    response = await client.get(f"{API}/cases/{case_id}/timeline", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def listed(client, headers, case: dict) -> bool:
    """Whether the case shows in the caller's GET /cases (searched by its reference)."""
    response = await client.get(
        f"{API}/cases", params={"q": case["reference"], "limit": 100}, headers=headers
    )
    assert response.status_code == 200, response.text
    return case["id"] in {c["id"] for c in response.json()["items"]}


async def found_by_text(client, headers, word: str) -> set[str]:
    response = await client.get(f"{API}/records", params={"q": word, "limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return {r["id"] for r in response.json()["items"]}


async def full_queue(client, headers, **params) -> list[dict]:
    """Every item of GET /escalations, following the cursor."""
    items, cursor = [], None
    while True:
        query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        response = await client.get(f"{API}/escalations", params=query, headers=headers)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


# --------------------------------------------------------------------------------------
# Creation and references.


async def test_reference_format_and_sequence_per_unit(client, auth):
    chef, cross83 = await auth("cross13.chef"), await auth("cross83.police")
    first = await open_case(client, chef)
    match = REFERENCE.match(first["reference"])
    assert match and match["code"] == "CROSS13"
    assert int(match["year"]) == datetime.now(UTC).year
    assert first["status"] == "open" and first["unit_code"] == "CROSS-13"
    assert first["lead"] == "cross13.chef" and first["version"] == 1

    in_83 = await open_case(client, cross83)
    assert in_83["reference"].startswith(f"CROSS83-{datetime.now(UTC).year}-")
    second = await open_case(client, chef)
    again_83 = await open_case(client, cross83)
    # Each unit has its own sequence: a CROSS-83 case does not take a CROSS-13 number.
    assert number(second["reference"]) == number(first["reference"]) + 1
    assert number(again_83["reference"]) == number(in_83["reference"]) + 1


async def test_concurrent_creation_gives_unique_consecutive_references(client, auth):
    chef = await auth("cross13.chef")
    start = number((await open_case(client, chef))["reference"])
    responses = await asyncio.gather(
        *(
            client.post(f"{API}/cases", json={"title": f"Dossier simultané {i}"}, headers=chef)
            for i in range(20)
        )
    )
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    references = [r.json()["reference"] for r in responses]
    assert len(set(references)) == 20
    assert sorted(number(ref) for ref in references) == list(range(start + 1, start + 21))
    after = await open_case(client, chef)
    assert number(after["reference"]) == start + 21


@pytest.mark.parametrize("persona", ["ofast.analyste", "admin", "auditor", "douane-dnred"])
async def test_who_cannot_open_a_case(client, auth, persona):
    response = await client.post(
        f"{API}/cases", json={"title": "Pas autorisé"}, headers=await auth(persona)
    )
    assert response.status_code == 403, response.text


async def test_analyst_of_a_cross_cannot_open_a_case(client, new_user):
    user, password = await new_user("gendarmerie", "CROSS-13", "analyst")
    headers = await user_headers(client, user, password)
    response = await client.post(f"{API}/cases", json={"title": "Analyse"}, headers=headers)
    assert response.status_code == 403, response.text


async def test_member_of_two_units_names_the_unit(client, auth, new_user):
    ids = await units(client, auth)
    user, password = await new_user("police", "CROSS-13", "officer")
    await add_membership(client, await auth("admin"), user["id"], ids["CROSS-83"])
    headers = await user_headers(client, user, password)
    missing = await client.post(f"{API}/cases", json={"title": "Deux unités"}, headers=headers)
    assert loc(missing) == ["body", "unit_id"]
    foreign = await client.post(
        f"{API}/cases", headers=headers, json={"title": "Deux unités", "unit_id": ids["CROSS-59"]}
    )
    assert loc(foreign) == ["body", "unit_id"]
    named = await client.post(
        f"{API}/cases", headers=headers, json={"title": "Deux unités", "unit_id": ids["CROSS-83"]}
    )
    assert named.status_code == 201, named.text
    assert named.json()["reference"].startswith("CROSS83-")
    assert named.json()["unit_id"] == ids["CROSS-83"]


# --------------------------------------------------------------------------------------
# Changes with If-Match, and the timeline.


async def test_patch_needs_if_match_and_changes_version_and_etag(client, auth):
    police = await auth("cross13.police")
    case = await open_case(client, police)
    read = await get_case(client, police, case["id"])
    etag = read.headers["ETag"]
    assert etag == f'"{case["version"]}"'

    no_header = await client.patch(
        f"{API}/cases/{case['id']}", json={"title": "Nouveau titre"}, headers=police
    )
    assert no_header.status_code == 428, no_header.text
    stale = await client.patch(
        f"{API}/cases/{case['id']}",
        json={"title": "Nouveau titre"},
        headers={**police, "If-Match": '"999"'},
    )
    assert stale.status_code == 412, stale.text
    assert (await get_case(client, police, case["id"])).json()["title"] == case["title"]

    done = await client.patch(
        f"{API}/cases/{case['id']}",
        json={
            "title": "Nouveau titre",
            "priority": "urgent",
            "judicial_reference": "JIRS-MRS-2026-117",
        },
        headers={**police, "If-Match": etag},
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["version"] == case["version"] + 1
    assert done.headers["ETag"] == f'"{body["version"]}"' != etag
    assert (body["title"], body["priority"], body["judicial_reference"]) == (
        "Nouveau titre",
        "urgent",
        "JIRS-MRS-2026-117",
    )
    reused = await client.patch(
        f"{API}/cases/{case['id']}", json={"summary": "x"}, headers={**police, "If-Match": etag}
    )
    assert reused.status_code == 412

    events = await timeline(client, police, case["id"])
    assert [e["action"] for e in events] == ["created", "updated"]
    change = events[-1]
    assert change["actor"] == "cross13.police" and change["created_at"]
    assert change["details"]["title"] == {"before": case["title"], "after": "Nouveau titre"}
    assert change["details"]["priority"] == {"before": "high", "after": "urgent"}
    assert change["details"]["judicial_reference"] == {"before": None, "after": "JIRS-MRS-2026-117"}
    bad = await client.patch(
        f"{API}/cases/{case['id']}",
        json={"priority": "critical"},
        headers={**police, "If-Match": done.headers["ETag"]},
    )
    assert loc(bad) == ["body", "priority"]


async def test_lead_change_moves_the_lead_powers_and_grants(client, auth):
    police, cross83 = await auth("cross13.police"), await auth("cross83.police")
    ids = await user_ids(client, auth)
    record = await file(client, police, f"Renseignement {uuid.uuid4().hex[:8]}")
    case = await open_case(client, police)
    assert (await link(client, police, case["id"], record)).status_code == 204
    etag = (await get_case(client, police, case["id"])).headers["ETag"]
    changed = await client.patch(
        f"{API}/cases/{case['id']}",
        json={"lead_user_id": ids["cross83.police"]},
        headers={**police, "If-Match": etag},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["lead"] == "cross83.police"
    roles = {m["username"]: m["role"] for m in changed.json()["team"]}
    assert roles == {"cross13.police": "member", "cross83.police": "lead"}
    # The new lead, from another unit, sees the case and its shareable records.
    assert (await get_case(client, cross83, case["id"])).status_code == 200
    assert (await get_record(client, cross83, record)).status_code == 200
    # The former lead, an officer, no longer manages the team.
    refused = await put_member(client, police, case["id"], ids["cross13.gendarme"], role="member")
    assert refused.status_code == 403, refused.text
    events = await timeline(client, police, case["id"])
    assert events[-1]["details"]["lead_user_id"] == {
        "before": ids["cross13.police"],
        "after": ids["cross83.police"],
    }


async def test_every_mutation_lands_on_the_timeline(client, auth):
    chef, police, marseille = (
        await auth("cross13.chef"),
        await auth("cross13.police"),
        await auth("marseille.chef"),
    )
    ids = await user_ids(client, auth)
    unit = await units(client, auth)
    case = await open_case(client, chef)
    cid = case["id"]
    record = await file(client, police, f"Chronologie {uuid.uuid4().hex[:8]}")

    async def ok(response, status=200):
        assert response.status_code == status, response.text
        return response

    etag = (await get_case(client, chef, cid)).headers["ETag"]
    await ok(
        await client.patch(
            f"{API}/cases/{cid}", json={"summary": "Résumé"}, headers={**chef, "If-Match": etag}
        )
    )
    await ok(await put_member(client, chef, cid, ids["cross83.police"], role="member"), 204)
    await ok(
        await client.delete(f"{API}/cases/{cid}/team/{ids['cross83.police']}", headers=chef), 204
    )
    await ok(await link(client, chef, cid, record), 204)
    person = (
        await ok(
            await client.post(
                f"{API}/cases/{cid}/entities",
                headers=chef,
                json={"entity": {"kind": "person", "surname": "Martin", "given_names": "Paul"}},
            ),
            201,
        )
    ).json()
    task = (
        await ok(
            await client.post(
                f"{API}/cases/{cid}/tasks",
                headers=chef,
                json={"title": "Réquisition opérateur", "assignee_id": ids["cross13.police"]},
            ),
            201,
        )
    ).json()
    await ok(
        await client.patch(
            f"{API}/cases/{cid}/tasks/{task['id']}", json={"status": "doing"}, headers=police
        )
    )
    await ok(
        await client.post(
            f"{API}/cases/{cid}/notes", json={"body": "Point d'étape"}, headers=police
        ),
        201,
    )
    await ok(
        await client.post(
            f"{API}/cases/{cid}/seizures/drugs",
            headers=police,
            json={
                "substance": "cocaine",
                "quantity": "12.5",
                "quantity_unit": "kg",
                "purity_pct": "78.5",
                "place": "Fos-sur-Mer",
                "seized_on": "2026-10-01",
            },
        ),
        201,
    )
    await ok(
        await client.post(
            f"{API}/cases/{cid}/seizures/assets",
            headers=police,
            json={
                "category": "cash",
                "estimated_value_eur": "48000",
                "agrasc_reference": "AGRASC-1",
                "seized_on": "2026-10-01",
            },
        ),
        201,
    )
    await ok(
        await client.post(
            f"{API}/cases/{cid}/arrests",
            headers=police,
            json={"count": 1, "person_entity_ids": [person["id"]], "arrested_on": "2026-10-01"},
        ),
        201,
    )
    await ok(
        await client.post(
            f"{API}/cases/{cid}/close",
            headers=chef,
            json={"outcome": "no_further_action", "note": "Classement"},
        )
    )
    await ok(await client.post(f"{API}/cases/{cid}/reopen", headers=chef))
    first = await ok(await escalate(client, chef, cid), 201)
    await ok(await decide(client, marseille, first.json()["id"], "return"))
    second = await ok(await escalate(client, chef, cid), 201)
    await ok(await decide(client, marseille, second.json()["id"], "accept"))
    await ok(
        await client.post(
            f"{API}/cases/{cid}/delegate",
            headers=marseille,
            json={"to_unit_id": unit["CROSS-13"], "note": "Retour"},
        )
    )

    events = await timeline(client, chef, cid)
    assert [e["action"] for e in events] == [
        "created",
        "updated",
        "team_member_set",
        "team_member_removed",
        "record_linked",
        "entity_added",
        "task_added",
        "task_changed",
        "note_added",
        "drug_seizure_added",
        "asset_seizure_added",
        "arrest_added",
        "closed",
        "reopened",
        "escalated",
        "escalation_returned",
        "escalated",
        "escalation_accepted",
        "delegated",
    ]
    by_action = {e["action"]: e for e in events}
    assert by_action["task_changed"]["details"]["status"] == {"before": "todo", "after": "doing"}
    assert by_action["task_changed"]["actor"] == "cross13.police"
    assert by_action["escalation_accepted"]["actor"] == "marseille.chef"
    assert by_action["delegated"]["details"]["unit"] == {
        "before": "ANT-MARSEILLE",
        "after": "CROSS-13",
    }
    assert by_action["closed"]["details"]["outcome"] == "no_further_action"
    assert all(e["created_at"] for e in events)
    stamps = [datetime.fromisoformat(e["created_at"]) for e in events]
    assert stamps == sorted(stamps)
    # Whoever cannot see the case cannot read its timeline either.
    for persona in ("cross83.police", "lille.chef", "admin"):
        hidden = await client.get(f"{API}/cases/{cid}/timeline", headers=await auth(persona))
        assert hidden.status_code == 404, persona


# --------------------------------------------------------------------------------------
# Team, links and placeholders.


@pytest.fixture
async def linked_case(client, auth):
    """A CROSS-13 case linking an H0 unit record, an H2 record and a customs agency record,
    each with its own marker words in title and narrative."""
    police, douane, chef = (
        await auth("cross13.police"),
        await auth("cross13.douane"),
        await auth("cross13.chef"),
    )
    tag = uuid.uuid4().hex[:8]
    words = {name: (f"titre{name}{tag}", f"recit{name}{tag}") for name in ("h0", "h2", "agency")}

    async def filed(headers, name, **changes):
        title, narrative = words[name]
        return await file(
            client, headers, f"Note {title}", narrative=f"Constat {narrative}", **changes
        )

    records = {
        "h0": await filed(police, "h0"),
        "h2": await filed(police, "h2", handling_code="H2"),
        "agency": await filed(douane, "agency", scope="agency"),
    }
    case = await open_case(client, chef)
    for name, record_id in records.items():
        response = await link(client, douane if name == "agency" else chef, case["id"], record_id)
        assert response.status_code == 204, response.text
    return case, records, words


async def test_team_member_from_another_unit_and_placeholders(client, auth, linked_case):
    case, records, words = linked_case
    chef, cross83 = await auth("cross13.chef"), await auth("cross83.police")
    ids = await user_ids(client, auth)
    assert (await get_case(client, cross83, case["id"])).status_code == 404
    assert (await get_record(client, cross83, records["h0"])).status_code == 404

    added = await put_member(client, chef, case["id"], ids["cross83.police"], role="member")
    assert added.status_code == 204, added.text
    seen = await get_case(client, cross83, case["id"])
    assert seen.status_code == 200, seen.text
    assert await listed(client, cross83, case)
    linked = {r["record_id"]: r for r in seen.json()["records"]}
    assert set(linked) == set(records.values())
    assert linked[records["h0"]]["withheld"] is False
    assert linked[records["h0"]]["record"]["title"] == f"Note {words['h0'][0]}"
    for name in ("h2", "agency"):
        placeholder = linked[records[name]]
        assert placeholder["withheld"] is True and placeholder["record"] is None
        assert placeholder["unit_code"] == "CROSS-13" and "CROSS-13" in placeholder["message"]
    payload = json.dumps(seen.json()) + json.dumps(await timeline(client, cross83, case["id"]))
    for name in ("h2", "agency"):
        title, narrative = words[name]
        assert title not in payload and narrative not in payload
    assert words["h0"][0] in payload
    assert (await get_record(client, cross83, records["h0"])).status_code == 200
    for name in ("h2", "agency"):
        hidden = await get_record(client, cross83, records[name])
        assert hidden.status_code == 404

    # Inside CROSS-13 the police officer sees the H2 record (its own unit's) but not the
    # customs agency record.
    police_view = (await get_case(client, await auth("cross13.police"), case["id"])).json()
    by_id = {r["record_id"]: r for r in police_view["records"]}
    assert by_id[records["h2"]]["withheld"] is False
    assert by_id[records["agency"]]["withheld"] is True
    assert words["agency"][0] not in json.dumps(police_view)

    # A member may work the case.
    note = await client.post(
        f"{API}/cases/{case['id']}/notes", json={"body": "Vu côté Var"}, headers=cross83
    )
    assert note.status_code == 201, note.text


async def test_team_expiry_ends_access(client, auth, linked_case):
    case, records, words = linked_case
    chef, cross83 = await auth("cross13.chef"), await auth("cross83.police")
    ids = await user_ids(client, auth)
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert (
        await put_member(
            client, chef, case["id"], ids["cross83.police"], role="member", expires_at=later
        )
    ).status_code == 204
    assert (await get_case(client, cross83, case["id"])).status_code == 200
    assert records["h0"] in await found_by_text(client, cross83, words["h0"][0])

    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert (
        await put_member(
            client, chef, case["id"], ids["cross83.police"], role="member", expires_at=past
        )
    ).status_code == 204
    gone = await get_case(client, cross83, case["id"])
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    assert not await listed(client, cross83, case)
    assert (
        await client.get(f"{API}/cases/{case['id']}/timeline", headers=cross83)
    ).status_code == 404
    assert (await get_record(client, cross83, records["h0"])).status_code == 404
    assert records["h0"] not in await found_by_text(client, cross83, words["h0"][0])
    assert (
        await client.post(
            f"{API}/cases/{case['id']}/notes", json={"body": "Encore là"}, headers=cross83
        )
    ).status_code == 404
    team = {m["username"]: m for m in (await get_case(client, chef, case["id"])).json()["team"]}
    assert team["cross83.police"]["active"] is False


async def test_observer_reads_but_does_not_write_and_removal_ends_access(client, auth, linked_case):
    case, records, _ = linked_case
    chef, cross83 = await auth("cross13.chef"), await auth("cross83.police")
    ids = await user_ids(client, auth)
    assert (
        await put_member(client, chef, case["id"], ids["cross83.police"], role="observer")
    ).status_code == 204
    assert (await get_case(client, cross83, case["id"])).status_code == 200
    assert (await get_record(client, cross83, records["h0"])).status_code == 200
    note = await client.post(
        f"{API}/cases/{case['id']}/notes", json={"body": "Observation"}, headers=cross83
    )
    assert note.status_code == 403, note.text
    task = await client.post(
        f"{API}/cases/{case['id']}/tasks", json={"title": "Une tâche"}, headers=cross83
    )
    assert task.status_code == 403
    etag = (await get_case(client, cross83, case["id"])).headers["ETag"]
    patch = await client.patch(
        f"{API}/cases/{case['id']}",
        json={"title": "Observé"},
        headers={**cross83, "If-Match": etag},
    )
    assert patch.status_code == 403
    # An observer does not manage the team either; an officer of the custody unit neither.
    for headers in (cross83, await auth("cross13.police")):
        refused = await put_member(client, headers, case["id"], ids["cross13.gendarme"])
        assert refused.status_code == 403, refused.text

    removed = await client.delete(
        f"{API}/cases/{case['id']}/team/{ids['cross83.police']}", headers=chef
    )
    assert removed.status_code == 204, removed.text
    assert (await get_case(client, cross83, case["id"])).status_code == 404
    assert (await get_record(client, cross83, records["h0"])).status_code == 404
    again = await client.delete(
        f"{API}/cases/{case['id']}/team/{ids['cross83.police']}", headers=chef
    )
    assert again.status_code == 404
    lead = await client.delete(f"{API}/cases/{case['id']}/team/{ids['cross13.chef']}", headers=chef)
    assert lead.status_code == 409, lead.text
    assert "cross13.chef" in {
        m["username"] for m in (await get_case(client, chef, case["id"])).json()["team"]
    }
    platform = await put_member(client, chef, case["id"], ids["admin"])
    assert loc(platform) == ["path", "user_id"]


async def test_links_need_read_access_and_are_unique(client, auth, linked_case):
    case, records, _ = linked_case
    chef, police = await auth("cross13.chef"), await auth("cross13.police")
    elsewhere = await file(
        client,
        await auth("cross59.douane"),
        "Note du Nord",
        location={"commune": "Lille", "departement": "59"},
    )
    hidden = await link(client, chef, case["id"], elsewhere)
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    unknown = await link(client, chef, case["id"], str(uuid.uuid4()))
    assert unknown.status_code == 404
    # The police officer cannot read the customs agency record, so cannot link it either
    # (here: link it again) — 404, not a conflict that would confirm it exists.
    assert (await link(client, police, case["id"], records["agency"])).status_code == 404
    double = await link(client, chef, case["id"], records["h0"])
    assert double.status_code == 409, double.text
    body = (await get_case(client, chef, case["id"])).json()
    assert len(body["records"]) == 3
    assert not any(r["record_id"] == elsewhere for r in body["records"])


# --------------------------------------------------------------------------------------
# Tasks, notes, seizures, arrests.


async def test_tasks_assignees_and_status(client, auth):
    chef, police = await auth("cross13.chef"), await auth("cross13.police")
    ids = await user_ids(client, auth)
    case = await open_case(client, chef)
    cid = case["id"]
    outsider = await client.post(
        f"{API}/cases/{cid}/tasks",
        headers=chef,
        json={"title": "Surveillance", "assignee_id": ids["cross83.police"]},
    )
    assert loc(outsider) == ["body", "assignee_id"]
    assert "assignee_id" in outsider.json()["detail"]

    task = await client.post(
        f"{API}/cases/{cid}/tasks",
        headers=chef,
        json={
            "title": "Surveillance",
            "assignee_id": ids["cross13.police"],
            "due_on": "2026-12-15",
        },
    )
    assert task.status_code == 201, task.text
    task = task.json()
    assert task["status"] == "todo" and task["due_on"] == "2026-12-15"
    for status in ("doing", "done", "todo"):
        moved = await client.patch(
            f"{API}/cases/{cid}/tasks/{task['id']}", json={"status": status}, headers=police
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == status
    bad = await client.patch(
        f"{API}/cases/{cid}/tasks/{task['id']}", json={"status": "finished"}, headers=police
    )
    assert loc(bad) == ["body", "status"]
    reassign = await client.patch(
        f"{API}/cases/{cid}/tasks/{task['id']}",
        headers=police,
        json={"assignee_id": ids["cross59.douane"]},
    )
    assert loc(reassign) == ["body", "assignee_id"]

    # A team member may be assigned, an expired one may not.
    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    assert (
        await put_member(client, chef, cid, ids["cross83.police"], expires_at=past)
    ).status_code == 204
    expired = await client.post(
        f"{API}/cases/{cid}/tasks",
        headers=chef,
        json={"title": "Filature", "assignee_id": ids["cross83.police"]},
    )
    assert loc(expired) == ["body", "assignee_id"]
    assert (await put_member(client, chef, cid, ids["cross83.police"])).status_code == 204
    member_task = await client.post(
        f"{API}/cases/{cid}/tasks",
        headers=chef,
        json={"title": "Filature", "assignee_id": ids["cross83.police"]},
    )
    assert member_task.status_code == 201, member_task.text

    unknown = await client.patch(
        f"{API}/cases/{cid}/tasks/{uuid.uuid4()}", json={"status": "done"}, headers=police
    )
    assert unknown.status_code == 404
    other = await open_case(client, chef)
    cross_case = await client.patch(
        f"{API}/cases/{other['id']}/tasks/{task['id']}", json={"status": "done"}, headers=police
    )
    assert cross_case.status_code == 404
    tasks = {t["title"]: t for t in (await get_case(client, chef, cid)).json()["tasks"]}
    assert tasks["Surveillance"]["status"] == "todo"
    assert tasks["Filature"]["assignee_id"] == ids["cross83.police"]


async def test_notes(client, auth):
    police = await auth("cross13.police")
    case = await open_case(client, police)
    note = await client.post(
        f"{API}/cases/{case['id']}/notes", json={"body": "Audition prévue"}, headers=police
    )
    assert note.status_code == 201, note.text
    assert note.json()["author"] == "cross13.police"
    empty = await client.post(
        f"{API}/cases/{case['id']}/notes", json={"body": "  "}, headers=police
    )
    assert loc(empty) == ["body", "body"]
    body = (await get_case(client, police, case["id"])).json()
    assert [n["body"] for n in body["notes"]] == ["Audition prévue"]


DRUG = {
    "substance": "cannabis_resin",
    "quantity": "250",
    "quantity_unit": "kg",
    "purity_pct": "22.5",
    "place": "A7, péage de Lançon",
    "seized_on": "2026-10-12",
}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"quantity_unit": "litres"}, "quantity_unit"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-3"}, "quantity"),
        ({"purity_pct": "100.5"}, "purity_pct"),
        ({"purity_pct": "-1"}, "purity_pct"),
        ({"substance": "caffeine"}, "substance"),
    ],
)
async def test_drug_seizure_validation(client, auth, change, field):
    police = await auth("cross13.police")
    case = await open_case(client, police)
    bad = await client.post(
        f"{API}/cases/{case['id']}/seizures/drugs", json={**DRUG, **change}, headers=police
    )
    assert loc(bad) == ["body", field]
    assert (await get_case(client, police, case["id"])).json()["drug_seizures"] == []


async def test_drug_and_asset_seizures(client, auth):
    police = await auth("cross13.police")
    case = await open_case(client, police)
    drugs = await client.post(f"{API}/cases/{case['id']}/seizures/drugs", json=DRUG, headers=police)
    assert drugs.status_code == 201, drugs.text
    tablets = await client.post(
        f"{API}/cases/{case['id']}/seizures/drugs",
        headers=police,
        json={
            "substance": "mdma",
            "quantity": "1200",
            "quantity_unit": "tablets",
            "seized_on": "2026-10-13",
        },
    )
    assert tablets.status_code == 201, tablets.text
    assert tablets.json()["purity_pct"] is None

    asset = {
        "category": "vehicle",
        "estimated_value_eur": "35000.00",
        "agrasc_reference": "AGRASC-2026-0042",
        "seized_on": "2026-10-12",
    }
    negative = await client.post(
        f"{API}/cases/{case['id']}/seizures/assets",
        json={**asset, "estimated_value_eur": "-1"},
        headers=police,
    )
    assert loc(negative) == ["body", "estimated_value_eur"]
    unknown = await client.post(
        f"{API}/cases/{case['id']}/seizures/assets",
        json={**asset, "category": "horse"},
        headers=police,
    )
    assert loc(unknown) == ["body", "category"]
    saved = await client.post(
        f"{API}/cases/{case['id']}/seizures/assets", json=asset, headers=police
    )
    assert saved.status_code == 201, saved.text
    body = (await get_case(client, police, case["id"])).json()
    assert [(s["substance"], s["quantity_unit"]) for s in body["drug_seizures"]] == [
        ("cannabis_resin", "kg"),
        ("mdma", "tablets"),
    ]
    assert float(body["drug_seizures"][0]["quantity"]) == 250
    assert [(a["category"], float(a["estimated_value_eur"])) for a in body["asset_seizures"]] == [
        ("vehicle", 35000.0)
    ]


async def test_arrests_name_person_entities_of_the_case(client, auth):
    police = await auth("cross13.police")
    case = await open_case(client, police)
    other = await open_case(client, police)

    async def entity(case_id, body):
        response = await client.post(
            f"{API}/cases/{case_id}/entities", json={"entity": body}, headers=police
        )
        assert response.status_code == 201, response.text
        return response.json()["id"]

    person = await entity(
        case["id"], {"kind": "person", "surname": "Benali", "birth_date": "1991-03-04"}
    )
    phone = await entity(case["id"], {"kind": "phone", "number": "+33 6 12 34 56 78"})
    elsewhere = await entity(other["id"], {"kind": "person", "surname": "Durand"})

    async def arrest(ids):
        return await client.post(
            f"{API}/cases/{case['id']}/arrests",
            headers=police,
            json={"count": len(ids) or 1, "person_entity_ids": ids, "arrested_on": "2026-10-14"},
        )

    assert loc(await arrest([person, phone])) == ["body", "person_entity_ids", 1]
    assert loc(await arrest([elsewhere])) == ["body", "person_entity_ids", 0]
    assert loc(await arrest([person, str(uuid.uuid4())])) == ["body", "person_entity_ids", 1]
    zero = await client.post(
        f"{API}/cases/{case['id']}/arrests",
        headers=police,
        json={"count": 0, "arrested_on": "2026-10-14"},
    )
    assert loc(zero) == ["body", "count"]
    done = await arrest([person])
    assert done.status_code == 201, done.text
    assert done.json()["person_entity_ids"] == [person]
    assert len((await get_case(client, police, case["id"])).json()["arrests"]) == 1


# --------------------------------------------------------------------------------------
# Close and reopen.


async def test_close_and_reopen(client, auth):
    chef, police = await auth("cross13.chef"), await auth("cross13.police")
    ids = await user_ids(client, auth)
    case = await open_case(client, chef)
    cid = case["id"]
    # cross83.police leads on the team but is no custody supervisor.
    assert (
        await put_member(client, chef, cid, ids["cross83.police"], role="lead")
    ).status_code == 204
    not_lead = await client.post(
        f"{API}/cases/{cid}/close",
        headers=police,
        json={"outcome": "judicial_referral", "note": "Saisine"},
    )
    assert not_lead.status_code == 403, not_lead.text
    bad = await client.post(
        f"{API}/cases/{cid}/close", headers=chef, json={"outcome": "solved", "note": "Saisine"}
    )
    assert loc(bad) == ["body", "outcome"]
    no_note = await client.post(
        f"{API}/cases/{cid}/close", headers=chef, json={"outcome": "judicial_referral"}
    )
    assert loc(no_note) == ["body", "note"]

    closed = await client.post(
        f"{API}/cases/{cid}/close",
        headers=chef,
        json={"outcome": "judicial_referral", "note": "Saisine JIRS"},
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert (body["status"], body["outcome"], body["outcome_note"]) == (
        "closed",
        "judicial_referral",
        "Saisine JIRS",
    )
    assert closed.headers["ETag"] == f'"{body["version"]}"'

    work = [
        ("post", f"{API}/cases/{cid}/notes", {"body": "Après clôture"}),
        ("post", f"{API}/cases/{cid}/tasks", {"title": "Après clôture"}),
        ("post", f"{API}/cases/{cid}/seizures/drugs", DRUG),
        ("post", f"{API}/cases/{cid}/arrests", {"count": 1, "arrested_on": "2026-10-14"}),
        ("post", f"{API}/cases/{cid}/close", {"outcome": "merged", "note": "Encore"}),
    ]
    for method, path, json_body in work:
        refused = await client.request(method, path, json=json_body, headers=chef)
        assert refused.status_code == 409, (path, refused.text)
    etag = (await get_case(client, chef, cid)).headers["ETag"]
    patch = await client.patch(
        f"{API}/cases/{cid}", json={"title": "Après clôture"}, headers={**chef, "If-Match": etag}
    )
    assert patch.status_code == 409
    escalated = await escalate(client, chef, cid)
    assert escalated.status_code == 409

    officer = await client.post(f"{API}/cases/{cid}/reopen", headers=police)
    assert officer.status_code == 403, officer.text
    # A team lead who is not a custody supervisor does not reopen either.
    lead = await client.post(f"{API}/cases/{cid}/reopen", headers=await auth("cross83.police"))
    assert lead.status_code == 403
    reopened = await client.post(f"{API}/cases/{cid}/reopen", headers=chef)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "open" and reopened.json()["outcome"] is None
    assert (await client.post(f"{API}/cases/{cid}/reopen", headers=chef)).status_code == 409
    note = await client.post(f"{API}/cases/{cid}/notes", json={"body": "Reprise"}, headers=police)
    assert note.status_code == 201
    actions = [e["action"] for e in await timeline(client, chef, cid)]
    assert actions == ["created", "team_member_set", "closed", "reopened", "note_added"]


# --------------------------------------------------------------------------------------
# Escalation rules and the review queue.


async def test_escalation_rules(client, auth, new_user):
    chef, police = await auth("cross13.chef"), await auth("cross13.police")
    marseille = await auth("marseille.chef")
    unit = await units(client, auth)
    case = await open_case(client, chef)
    cid = case["id"]

    assert (await escalate(client, police, cid)).status_code == 403
    sibling_user, password = await new_user("police", "CROSS-83", "supervisor")
    sibling = await user_headers(client, sibling_user, password)
    for headers in (sibling, await auth("admin"), await auth("lille.chef")):
        hidden = await escalate(client, headers, cid)
        assert hidden.status_code == 404, hidden.text
    for target in ("CROSS-83", "CROSS-13", "OFAST-RENSEIGNEMENT", "ANT-LILLE"):
        wrong = await escalate(client, chef, cid, to_unit_id=unit[target])
        assert loc(wrong) == ["body", "to_unit_id"], target
    assert loc(await escalate(client, chef, cid, to_unit_id=str(uuid.uuid4()))) == [
        "body",
        "to_unit_id",
    ]
    assert (await get_case(client, chef, cid)).json()["status"] == "open"

    up = await escalate(client, chef, cid, priority="high")
    assert up.status_code == 201, up.text
    escalation = up.json()
    assert escalation["to_unit_id"] == unit["ANT-MARSEILLE"]  # the parent by default
    assert escalation["from_unit_code"] == "CROSS-13" and escalation["status"] == "pending"
    assert escalation["requested_by"] == "cross13.chef"
    after = (await get_case(client, chef, cid)).json()
    assert after["status"] == "escalated" and after["unit_id"] == unit["CROSS-13"]
    assert after["version"] == case["version"] + 1
    again = await escalate(client, chef, cid, to_unit_id=unit["OFAST"])
    assert again.status_code == 409, again.text
    assert [
        e["id"] for e in (await client.get(f"{API}/cases/{cid}/escalations", headers=chef)).json()
    ] == [escalation["id"]]
    # The reviewing supervisor reads the case but does not work it.
    assert (await get_case(client, marseille, cid)).status_code == 200
    note = await client.post(f"{API}/cases/{cid}/notes", json={"body": "Lu"}, headers=marseille)
    assert note.status_code == 403

    # A case of an antenne goes to OFAST by default and never down or sideways.
    antenne = await open_case(client, marseille)
    assert antenne["reference"].startswith("ANTMARSEILLE-")
    for target in ("CROSS-13", "CROSS-83", "ANT-LILLE"):
        wrong = await escalate(client, marseille, antenne["id"], to_unit_id=unit[target])
        assert loc(wrong) == ["body", "to_unit_id"], target
    to_ofast = await escalate(client, marseille, antenne["id"])
    assert to_ofast.status_code == 201 and to_ofast.json()["to_unit_code"] == "OFAST"


async def test_review_queue_order_deadlines_and_overdue(client, auth, db, settings):
    chef, marseille = await auth("cross13.chef"), await auth("marseille.chef")
    made = {}
    for name, priority in (
        ("routine1", "routine"),
        ("urgent", "urgent"),
        ("high", "high"),
        ("routine2", "routine"),
    ):
        case = await open_case(client, chef, title=f"File d'attente {name}")
        response = await escalate(client, chef, case["id"], priority=priority)
        assert response.status_code == 201, response.text
        made[name] = response.json()

    queue = await full_queue(client, marseille, status="pending")
    assert all(e["status"] == "pending" for e in queue)
    ours = [e for e in queue if e["id"] in {m["id"] for m in made.values()}]
    assert [e["id"] for e in ours] == [
        made[n]["id"] for n in ("urgent", "high", "routine1", "routine2")
    ]
    ranks = {"urgent": 0, "high": 1, "routine": 2}
    keys = [(ranks[e["priority"]], e["created_at"]) for e in queue]
    assert keys == sorted(keys)
    for name, item in zip(("urgent", "high", "routine1", "routine2"), ours, strict=True):
        hours = settings.review_hours(item["priority"])
        due = datetime.fromisoformat(item["due_at"]) - datetime.fromisoformat(item["created_at"])
        assert abs(due - timedelta(hours=hours)) < timedelta(minutes=1), name
        assert item["overdue"] is False
    assert settings.review_hours("urgent") == settings.review_hours_urgent

    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            update(Escalation)
            .where(Escalation.id == uuid.UUID(made["high"]["id"]))
            .values(due_at=datetime.now(UTC) - timedelta(hours=1))
        )
    flagged = {e["id"]: e["overdue"] for e in await full_queue(client, marseille, status="pending")}
    assert flagged[made["high"]["id"]] is True
    assert not any(flagged[made[n]["id"]] for n in ("urgent", "routine1", "routine2"))
    one = await client.get(f"{API}/escalations/{made['high']['id']}", headers=marseille)
    assert one.status_code == 200 and one.json()["overdue"] is True

    # The review queue is the target's: the origin follows what it sent through the case;
    # other units see nothing of it.
    assert made["urgent"]["id"] not in {
        e["id"] for e in await full_queue(client, chef, status="pending")
    }
    sent = await client.get(f"{API}/cases/{made['urgent']['case_id']}/escalations", headers=chef)
    assert [e["id"] for e in sent.json()] == [made["urgent"]["id"]]
    for persona in ("lille.chef", "cross83.police", "ofast.analyste"):
        headers = await auth(persona)
        for extra in ({}, {"include_descendants": "true"}):
            seen = {e["id"] for e in await full_queue(client, headers, status="pending", **extra)}
            assert not seen & {m["id"] for m in made.values()}, (persona, extra)
        hidden = await client.get(f"{API}/escalations/{made['urgent']['id']}", headers=headers)
        assert hidden.status_code == 404, persona


async def test_ofast_sees_antenne_queues_only_with_include_descendants(client, auth):
    chef, ofast = await auth("cross13.chef"), await auth("ofast.chef")
    case = await open_case(client, chef)
    up = (await escalate(client, chef, case["id"], priority="urgent")).json()
    plain = {e["id"] for e in await full_queue(client, ofast, status="pending")}
    assert up["id"] not in plain
    wide = {
        e["id"]
        for e in await full_queue(client, ofast, status="pending", include_descendants="true")
    }
    assert up["id"] in wide
    # A supervisor of an antenne gains nothing with include_descendants.
    lille = {
        e["id"]
        for e in await full_queue(
            client, await auth("lille.chef"), status="pending", include_descendants="true"
        )
    }
    assert up["id"] not in lille
    declined = await decide(client, await auth("marseille.chef"), up["id"], "decline")
    assert declined.status_code == 200
    assert up["id"] not in {
        e["id"]
        for e in await full_queue(client, ofast, status="pending", include_descendants="true")
    }


# --------------------------------------------------------------------------------------
# Decisions.


async def test_who_decides(client, auth):
    chef, marseille, ofast = (
        await auth("cross13.chef"),
        await auth("marseille.chef"),
        await auth("ofast.chef"),
    )
    case = await open_case(client, chef)
    up = (await escalate(client, chef, case["id"], priority="high")).json()
    expected = {
        "cross13.chef": 403,
        "cross13.police": 403,
        "ofast.chef": 403,
        "lille.chef": 404,
        "admin": 404,
        "cross83.police": 404,
        "ofast.analyste": 404,
    }
    for persona, status in expected.items():
        refused = await decide(client, await auth(persona), up["id"], "accept")
        assert refused.status_code == status, (persona, refused.text)
    # OFAST oversees the antenne's queue but never decides for it.
    assert (await get_case(client, ofast, case["id"])).status_code == 200
    still = await client.get(f"{API}/escalations/{up['id']}", headers=chef)
    assert still.json()["status"] == "pending" and still.json()["decided_by"] is None
    bad = await client.post(
        f"{API}/escalations/{up['id']}/decision",
        headers=marseille,
        json={"decision": "maybe", "note": "?"},
    )
    assert loc(bad) == ["body", "decision"]
    accepted = await decide(client, marseille, up["id"], "accept", note="Pris en charge")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["decided_by"] == "marseille.chef"
    assert accepted.json()["decision_note"] == "Pris en charge"


async def test_decision_after_a_decision_is_a_conflict(client, auth):
    """The loser of two decisions gets 409 even when the winner's decline or return hid
    the case from the target unit."""
    chef, marseille = await auth("cross13.chef"), await auth("marseille.chef")
    for first, second in (("decline", "accept"), ("return", "decline"), ("accept", "return")):
        case = await open_case(client, chef)
        up = (await escalate(client, chef, case["id"])).json()
        assert (await decide(client, marseille, up["id"], first)).status_code == 200
        late = await decide(client, marseille, up["id"], second)
        assert late.status_code == 409, (first, second, late.text)
        assert late.json()["code"] == "already_decided"
    # Whoever could never see the case still gets 404.
    assert (await decide(client, await auth("lille.chef"), up["id"], "accept")).status_code == 404


async def test_concurrent_decisions_one_wins(client, auth):
    chef, marseille = await auth("cross13.chef"), await auth("marseille.chef")
    unit = await units(client, auth)
    for _ in range(3):
        case = await open_case(client, chef)
        up = (await escalate(client, chef, case["id"], priority="urgent")).json()
        accept, decline = await asyncio.gather(
            decide(client, marseille, up["id"], "accept"),
            decide(client, marseille, up["id"], "decline"),
        )
        assert sorted([accept.status_code, decline.status_code]) == [200, 409], (
            accept.text,
            decline.text,
        )
        winner = "accepted" if accept.status_code == 200 else "declined"
        loser = decline if winner == "accepted" else accept
        assert loser.json()["code"] == "already_decided"
        final = (await client.get(f"{API}/escalations/{up['id']}", headers=chef)).json()
        assert final["status"] == winner
        body = (await get_case(client, chef, case["id"])).json()
        assert body["status"] == "open"
        assert body["unit_id"] == unit["ANT-MARSEILLE" if winner == "accepted" else "CROSS-13"]
        decided = [
            e
            for e in await timeline(client, chef, case["id"])
            if e["action"].startswith("escalation_")
        ]
        assert [e["action"] for e in decided] == [f"escalation_{winner}"]


async def test_reescalation_after_return(client, auth):
    chef, marseille = await auth("cross13.chef"), await auth("marseille.chef")
    unit = await units(client, auth)
    case = await open_case(client, chef)
    first = (await escalate(client, chef, case["id"])).json()
    returned = await decide(client, marseille, first["id"], "return", note="Joindre les PV")
    assert returned.status_code == 200, returned.text
    assert returned.json()["status"] == "returned"
    assert returned.json()["decision_note"] == "Joindre les PV"
    back = (await get_case(client, chef, case["id"])).json()
    assert back["status"] == "open" and back["unit_id"] == unit["CROSS-13"]
    second = await escalate(client, chef, case["id"], priority="urgent")
    assert second.status_code == 201, second.text
    accepted = await decide(client, marseille, second.json()["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    body = (await get_case(client, marseille, case["id"])).json()
    assert body["unit_id"] == unit["ANT-MARSEILLE"] and body["status"] == "open"
    history = (await client.get(f"{API}/cases/{case['id']}/escalations", headers=chef)).json()
    assert [e["status"] for e in history] == ["returned", "accepted"]
    # The origin keeps access; the new custody works the case.
    assert (await get_case(client, chef, case["id"])).status_code == 200
    note = await client.post(
        f"{API}/cases/{case['id']}/notes", json={"body": "Antenne"}, headers=marseille
    )
    assert note.status_code == 201


# --------------------------------------------------------------------------------------
# Delegation down.


async def test_delegation_down(client, auth, new_user):
    chef, ofast, cross83 = (
        await auth("cross13.chef"),
        await auth("ofast.chef"),
        await auth("cross83.police"),
    )
    unit = await units(client, auth)
    record = await file(client, await auth("cross13.police"), f"Délégation {uuid.uuid4().hex[:8]}")
    case = await open_case(client, chef)
    assert (await link(client, chef, case["id"], record)).status_code == 204
    up = await escalate(client, chef, case["id"], to_unit_id=unit["OFAST"], priority="urgent")
    assert up.status_code == 201 and up.json()["to_unit_code"] == "OFAST"
    assert (await decide(client, ofast, up.json()["id"], "accept")).status_code == 200
    assert (await get_record(client, ofast, record)).status_code == 200
    assert (await get_case(client, cross83, case["id"])).status_code == 404

    same = await client.post(
        f"{API}/cases/{case['id']}/delegate",
        headers=ofast,
        json={"to_unit_id": unit["OFAST"], "note": "Non"},
    )
    assert loc(same) == ["body", "to_unit_id"]
    officer = await client.post(
        f"{API}/cases/{case['id']}/delegate",
        headers=await auth("cross13.police"),
        json={"to_unit_id": unit["CROSS-83"], "note": "Non"},
    )
    assert officer.status_code == 403
    delegated = await client.post(
        f"{API}/cases/{case['id']}/delegate",
        headers=ofast,
        json={"to_unit_id": unit["CROSS-83"], "note": "Au Var"},
    )
    assert delegated.status_code == 200, delegated.text
    assert delegated.json()["unit_code"] == "CROSS-83" and delegated.json()["status"] == "open"
    # Custody moved down; OFAST and CROSS-13 keep access; CROSS-83 now sees the case and
    # its shareable records.
    assert (await get_case(client, ofast, case["id"])).status_code == 200
    assert (await get_case(client, chef, case["id"])).status_code == 200
    assert (await get_case(client, cross83, case["id"])).status_code == 200
    assert await listed(client, cross83, case)
    assert (await get_record(client, cross83, record)).status_code == 200
    note = await client.post(
        f"{API}/cases/{case['id']}/notes", json={"body": "Var"}, headers=cross83
    )
    assert note.status_code == 201
    # OFAST no longer holds custody, so it no longer delegates.
    again = await client.post(
        f"{API}/cases/{case['id']}/delegate",
        headers=ofast,
        json={"to_unit_id": unit["CROSS-13"], "note": "Non"},
    )
    assert again.status_code == 403

    # From CROSS-83, neither up nor sideways.
    var_user, password = await new_user("police", "CROSS-83", "supervisor")
    var_chef = await user_headers(client, var_user, password)
    for target in ("ANT-MARSEILLE", "OFAST", "CROSS-13", "CROSS-59", "CROSS-83"):
        wrong = await client.post(
            f"{API}/cases/{case['id']}/delegate",
            headers=var_chef,
            json={"to_unit_id": unit[target], "note": "Non"},
        )
        assert loc(wrong) == ["body", "to_unit_id"], target
    assert (await get_case(client, var_chef, case["id"])).json()["unit_code"] == "CROSS-83"


# --------------------------------------------------------------------------------------
# Who sees a case: every demo persona.


@pytest.fixture(scope="module")
async def persona_cases(client, auth):
    """Two CROSS-13 cases: one open, never escalated; one pending review by ANT-MARSEILLE."""
    chef = await auth("cross13.chef")
    quiet = await open_case(client, chef, title="Dossier discret")
    pending = await open_case(client, chef, title="Dossier en revue")
    up = await escalate(client, chef, pending["id"], priority="high")
    assert up.status_code == 201, up.text
    return quiet, pending


@pytest.mark.parametrize("persona", ALL_PERSONAS)
async def test_who_sees_a_case(client, auth, persona_cases, persona):
    quiet, pending = persona_cases
    headers = await auth(persona)
    # Before any escalation: the custody unit only.
    expected = persona in CROSS13
    response = await get_case(client, headers, quiet["id"])
    assert response.status_code == (200 if expected else 404), (persona, response.text)
    if not expected:
        assert response.json()["code"] == "not_found"
    for path in ("timeline", "escalations"):
        sub = await client.get(f"{API}/cases/{quiet['id']}/{path}", headers=headers)
        assert sub.status_code == (200 if expected else 404), (persona, path)
    assert await listed(client, headers, quiet) is expected
    everything = await client.get(f"{API}/cases", params={"limit": 100}, headers=headers)
    assert everything.status_code == 200
    if not expected:
        assert quiet["id"] not in {c["id"] for c in everything.json()["items"]}

    # Pending review: the target unit's supervisor and OFAST's, besides the custody unit.
    expected = persona in CROSS13 | {"marseille.chef", "ofast.chef"}
    response = await get_case(client, headers, pending["id"])
    assert response.status_code == (200 if expected else 404), (persona, response.text)
    assert await listed(client, headers, pending) is expected


# --------------------------------------------------------------------------------------
# The visibility matrix, through case links.


async def test_case_link_grants_in_the_visibility_matrix(client, auth):
    """A CROSS-13 `unit` record becomes visible to cross83.police only once they join the
    team of a case linking it — get and text search — while H2 and other agencies'
    `agency` records stay hidden; leaving the team closes it again."""
    police, douane, chef = (
        await auth("cross13.police"),
        await auth("cross13.douane"),
        await auth("cross13.chef"),
    )
    viewer = await auth("cross83.police")
    ids = await user_ids(client, auth)
    marker = "grantmatrix" + uuid.uuid4().hex[:8]
    filed = {
        ("police", "unit", "H0"): await file(client, police, f"Go-fast {marker} a"),
        ("police", "unit", "H2"): await file(
            client, police, f"Go-fast {marker} b", handling_code="H2"
        ),
        ("police", "agency", "H0"): await file(
            client, police, f"Go-fast {marker} c", scope="agency"
        ),
        ("douane", "agency", "H0"): await file(
            client, douane, f"Go-fast {marker} d", scope="agency"
        ),
        ("police", "chain", "H2"): await file(
            client, police, f"Go-fast {marker} e", scope="chain", handling_code="H2"
        ),
    }
    # Oracle, from DESIGN §1: a case grant opens a record to the team unless it is H2, or
    # of `agency` scope and another agency than the viewer's (police).
    shareable = {
        rid
        for (agency, scope, handling), rid in filed.items()
        if handling != "H2" and (scope != "agency" or agency == "police")
    }
    assert shareable == {filed[("police", "unit", "H0")], filed[("police", "agency", "H0")]}

    async def visible() -> set[str]:
        by_get = set()
        for rid in filed.values():
            status = (await get_record(client, viewer, rid)).status_code
            assert status in (200, 404)
            if status == 200:
                by_get.add(rid)
        assert await found_by_text(client, viewer, marker) == by_get
        return by_get

    assert await visible() == set()
    case = await open_case(client, chef)
    for (agency, _, _), rid in filed.items():
        response = await link(client, douane if agency == "douane" else police, case["id"], rid)
        assert response.status_code == 204, response.text
    assert await visible() == set()  # linked, but cross83.police is not on the team
    assert (await put_member(client, chef, case["id"], ids["cross83.police"])).status_code == 204
    assert await visible() == shareable
    placeholders = {
        r["record_id"]
        for r in (await get_case(client, viewer, case["id"])).json()["records"]
        if r["withheld"]
    }
    assert placeholders == set(filed.values()) - shareable
    assert (
        await client.delete(f"{API}/cases/{case['id']}/team/{ids['cross83.police']}", headers=chef)
    ).status_code == 204
    assert await visible() == set()


async def test_team_rules_for_the_lead_and_closed_cases(client, auth):
    """The lead stays lead without expiry; platform accounts never join; a closed case
    takes no team changes."""
    chef = await auth("cross13.chef")
    case = await open_case(client, chef)
    me = (await client.get(f"{API}/me", headers=chef)).json()
    demote = await client.put(
        f"{API}/cases/{case['id']}/team/{me['id']}", json={"role": "observer"}, headers=chef
    )
    assert demote.status_code == 422, demote.text
    admin_id = (await client.get(f"{API}/me", headers=await auth("admin"))).json()["id"]
    as_lead = await client.patch(
        f"{API}/cases/{case['id']}",
        json={"lead_user_id": admin_id},
        headers={**chef, "If-Match": '"1"'},
    )
    assert as_lead.status_code == 422, as_lead.text
    assert as_lead.json()["errors"][0]["loc"] == ["body", "lead_user_id"]
    closed = await client.post(
        f"{API}/cases/{case['id']}/close",
        json={"outcome": "no_further_action", "note": "Classé"},
        headers=chef,
    )
    assert closed.status_code == 200, closed.text
    police_id = (await client.get(f"{API}/me", headers=await auth("cross13.police"))).json()["id"]
    added = await client.put(
        f"{API}/cases/{case['id']}/team/{police_id}", json={"role": "member"}, headers=chef
    )
    assert added.status_code == 409, added.text
