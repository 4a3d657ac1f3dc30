"""Event deconfliction: planned operations of different units that overlap in time and
place are conflicts, told to both sides at once and kept up to date as plans change.

Every test plans at a random place in the sea off Marseille on a random day of 2030, so
tests do not meet each other's operations; assertions are on the test's own ids. Audit
events are read back by X-Request-ID.
"""

import asyncio
import functools
import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.auth.principal import load_principal
from app.schemas.operations import OperationCreate
from app.services import operations as operations_service
from tests import conftest
from tests.conftest import the_event, unit_ids, user_headers

API = "/api/v1"
OPS = f"{API}/operations"
EARTH_RADIUS_M = 6_371_000.0
# What the other side is shown of a conflicting operation — nothing of its case or place.
CONFLICT_KEYS = {
    "operation_id",
    "unit_id",
    "unit_code",
    "contact",
    "kind",
    "starts_at",
    "ends_at",
    "distance_m",
}


# --- places and windows -------------------------------------------------------------------


def spot() -> tuple[float, float]:
    """A random point in the sea south of Marseille and Toulon."""
    return round(random.uniform(42.55, 43.05), 6), round(random.uniform(4.9, 6.2), 6)


def far_spot() -> tuple[float, float]:
    """A random point in the Bay of Biscay, far from `spot()`: for 50 km circles."""
    return round(random.uniform(44.8, 45.2), 6), round(random.uniform(-3.5, -2.5), 6)


def north(lat: float, metres: float) -> float:
    """The latitude `metres` further north along the meridian (great-circle distance)."""
    return lat + math.degrees(metres / EARTH_RADIUS_M)


def window(hours: int = 4) -> tuple[datetime, datetime]:
    """A random window of `hours` on a random day of 2030-2039, on the hour (UTC)."""
    start = datetime(2030, 1, 1, tzinfo=UTC) + timedelta(
        days=random.randrange(3650), hours=random.randrange(6, 16)
    )
    return start, start + timedelta(hours=hours)


def body(
    starts: datetime,
    ends: datetime,
    lat: float,
    lon: float,
    *,
    kind: str = "search",
    radius_m: int = 150,
    **extra: Any,
) -> dict:
    return {
        "kind": kind,
        "starts_at": starts.isoformat(),
        "ends_at": ends.isoformat(),
        "lat": lat,
        "lon": lon,
        "radius_m": radius_m,
        **extra,
    }


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- requests -----------------------------------------------------------------------------


async def plan(client, headers, **kwargs) -> dict:
    """Plan an operation (asserting 201); the answer, with its ETag under `etag`."""
    response = await client.post(OPS, json=body(**kwargs), headers=headers)
    assert response.status_code == 201, response.text
    return {**response.json(), "etag": response.headers["ETag"]}


async def read(client, headers, operation_id: str) -> httpx.Response:
    return await client.get(f"{OPS}/{operation_id}", headers=headers)


async def conflicts_of(client, headers, operation_id: str) -> list[dict]:
    response = await read(client, headers, operation_id)
    assert response.status_code == 200, response.text
    return response.json()["conflicts"]


async def patch(client, headers, operation_id: str, etag: str | None, **changes):
    if etag is not None:
        headers = {**headers, "If-Match": etag}
    return await client.patch(f"{OPS}/{operation_id}", json=changes, headers=headers)


async def listed(client, headers) -> dict[str, dict]:
    """The caller's operations, every page, by id."""
    items: dict[str, dict] = {}
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        response = await client.get(OPS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        items |= {item["id"]: item for item in response.json()["items"]}
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def notes_about(client, headers, operation_id: str) -> list[dict]:
    """The caller's notifications about this operation, newest first."""
    response = await client.get(f"{API}/notifications", params={"limit": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return [n for n in response.json()["items"] if n["operation_id"] == operation_id]


def alerts(notes: list[dict]) -> list[dict]:
    return [
        n
        for n in notes
        if n["kind"] == "operation_conflict" and n["title"].startswith("Conflit d'opération")
    ]


def lifted(notes: list[dict]) -> list[dict]:
    return [
        n
        for n in notes
        if n["kind"] == "operation_conflict" and n["title"].startswith("Conflit levé")
    ]


def locs(response: httpx.Response) -> list[list]:
    return [error["loc"] for error in response.json()["errors"]]


async def conflicting_pair(client, auth) -> tuple[dict, dict, tuple[float, float]]:
    """A CROSS-13 search and a CROSS-83 search 200 m apart in overlapping windows: both
    operations (the second as answered) and the first one's place."""
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(
        client, await auth("cross13.police"), starts=starts, ends=ends, lat=lat, lon=lon
    )
    theirs = await plan(
        client,
        await auth("cross83.police"),
        starts=starts + timedelta(hours=1),
        ends=ends + timedelta(hours=1),
        lat=north(lat, 200),
        lon=lon,
    )
    assert [c["operation_id"] for c in theirs["conflicts"]] == [ours["id"]]
    return ours, theirs, (lat, lon)


# Every request of this file: an `operations-test-…` X-Request-ID.
send = functools.partial(conftest.send, label="operations")


# --- conflicts ----------------------------------------------------------------------------


async def test_two_units_searching_200_m_apart_are_told_at_once(client, auth):
    """The done-when: CROSS-13 plans a search; CROSS-83 plans one 200 m away in an
    overlapping window. The second answer names the conflict; both sides' supervisors
    and planners are notified; each side's list shows its operation with the conflict."""
    police, var, chef = (
        await auth("cross13.police"),
        await auth("cross83.police"),
        await auth("cross13.chef"),
    )
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(client, police, starts=starts, ends=ends, lat=lat, lon=lon, radius_m=150)
    assert ours["conflicts"] == [] and ours["status"] == "planned"
    assert ours["unit_code"] == "CROSS-13"

    theirs = await plan(
        client,
        var,
        starts=starts + timedelta(hours=2),
        ends=ends + timedelta(hours=2),
        lat=lat + 200 / 111_320,
        lon=lon,
        radius_m=150,
    )
    [conflict] = theirs["conflicts"]
    assert set(conflict) == CONFLICT_KEYS
    assert conflict["operation_id"] == ours["id"]
    assert (conflict["unit_code"], conflict["kind"]) == ("CROSS-13", "search")
    assert conflict["contact"] and all(conflict["contact"])
    assert (when(conflict["starts_at"]), when(conflict["ends_at"])) == (starts, ends)
    assert abs(conflict["distance_m"] - 200) <= 1

    for headers, own in ((police, ours), (chef, ours), (var, theirs)):
        [alert] = alerts(await notes_about(client, headers, own["id"]))
        other_code = "CROSS-83" if own is ours else "CROSS-13"
        assert other_code in alert["title"] and "200 m" in alert["title"]
        assert alert["body"].startswith("Contact : ")

    [from_13] = (await listed(client, police))[ours["id"]]["conflicts"]
    assert (from_13["operation_id"], from_13["unit_code"]) == (theirs["id"], "CROSS-83")
    assert abs(from_13["distance_m"] - 200) <= 1
    [from_83] = (await listed(client, var))[theirs["id"]]["conflicts"]
    assert (from_83["operation_id"], from_83["unit_code"]) == (ours["id"], "CROSS-13")


async def test_touching_windows_do_not_conflict(client, auth):
    """Windows are half-open: one ending when the other starts is no conflict."""
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(
        client, await auth("cross13.police"), starts=starts, ends=ends, lat=lat, lon=lon
    )
    theirs = await plan(
        client,
        await auth("cross83.police"),
        starts=ends,
        ends=ends + timedelta(hours=2),
        lat=lat,
        lon=lon,
    )
    assert theirs["conflicts"] == []
    assert await conflicts_of(client, await auth("cross13.police"), ours["id"]) == []
    overlapping = await plan(
        client,
        await auth("cross83.police"),
        starts=ends - timedelta(minutes=1),
        ends=ends + timedelta(hours=2),
        lat=lat,
        lon=lon,
    )
    assert [c["operation_id"] for c in overlapping["conflicts"]] == [ours["id"]]


@pytest.mark.parametrize(("metres", "conflict"), [(201, False), (199, True), (20, True)])
async def test_circles_conflict_only_when_they_meet(client, auth, metres, conflict):
    """Two 100 m circles: 201 m apart they do not meet; 199 m apart they do."""
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(
        client,
        await auth("cross13.police"),
        starts=starts,
        ends=ends,
        lat=lat,
        lon=lon,
        radius_m=100,
    )
    theirs = await plan(
        client,
        await auth("cross83.police"),
        starts=starts,
        ends=ends,
        lat=north(lat, metres),
        lon=lon,
        radius_m=100,
    )
    expected = [ours["id"]] if conflict else []
    assert [c["operation_id"] for c in theirs["conflicts"]] == expected
    from_13 = await conflicts_of(client, await auth("cross13.police"), ours["id"])
    assert [c["operation_id"] for c in from_13] == ([theirs["id"]] if conflict else [])
    if conflict:
        assert abs(theirs["conflicts"][0]["distance_m"] - metres) <= 1


@pytest.mark.parametrize(("metres", "conflict"), [(100_050, False), (99_950, True)])
async def test_the_largest_circles_conflict_when_they_meet(client, auth, metres, conflict):
    """Two 50 km circles (the largest allowed) whose centres lie 99.95 km apart along a
    meridian meet, and conflict; 100.05 km apart they do not."""
    lat, lon = far_spot()
    starts, ends = window()
    ours = await plan(
        client,
        await auth("cross13.police"),
        starts=starts,
        ends=ends,
        lat=lat,
        lon=lon,
        radius_m=50_000,
        kind="surveillance",
    )
    theirs = await plan(
        client,
        await auth("cross83.police"),
        starts=starts,
        ends=ends,
        lat=north(lat, metres),
        lon=lon,
        radius_m=50_000,
        kind="surveillance",
    )
    expected = [ours["id"]] if conflict else []
    assert [c["operation_id"] for c in theirs["conflicts"]] == expected
    from_13 = await conflicts_of(client, await auth("cross13.police"), ours["id"])
    assert [c["operation_id"] for c in from_13] == ([theirs["id"]] if conflict else [])


async def test_operations_of_one_unit_never_conflict(client, auth):
    """Two CROSS-13 operations at one place and time are no conflict, and no alert."""
    police, chef = await auth("cross13.police"), await auth("cross13.chef")
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(client, police, starts=starts, ends=ends, lat=lat, lon=lon)
    again = await plan(
        client, chef, starts=starts, ends=ends, lat=lat, lon=lon, kind="surveillance"
    )
    assert again["conflicts"] == []
    assert await conflicts_of(client, police, ours["id"]) == []
    assert alerts(await notes_about(client, police, ours["id"])) == []


async def test_a_cancelled_operation_no_longer_conflicts(client, auth):
    """Cancelling lifts the conflict: the other side is told, its operation lists no
    conflict, and a cancelled operation meets no new one."""
    police, var, chef = (
        await auth("cross13.police"),
        await auth("cross83.police"),
        await auth("cross13.chef"),
    )
    ours, theirs, (lat, lon) = await conflicting_pair(client, auth)
    cancelled = await client.post(f"{OPS}/{theirs['id']}/cancel", headers=var)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["conflicts"] == []

    assert await conflicts_of(client, police, ours["id"]) == []
    for headers in (police, chef):
        [told] = lifted(await notes_about(client, headers, ours["id"]))
        assert "CROSS-83" in told["title"]
    assert theirs["id"] not in await listed(client, var)

    later = await plan(
        client,
        await auth("cross59.douane"),
        starts=when(theirs["starts_at"]),
        ends=when(theirs["ends_at"]),
        lat=north(lat, 200),
        lon=lon,
    )
    assert [c["operation_id"] for c in later["conflicts"]] == [ours["id"]]
    again = await client.post(f"{OPS}/{theirs['id']}/cancel", headers=var)
    assert again.status_code == 200 and again.json()["status"] == "cancelled"
    changed = await patch(client, var, theirs["id"], '"2"', radius_m=120)
    assert changed.status_code == 422, changed.text


async def test_moving_an_operation_away_lifts_the_conflict_and_back_alerts_again(client, auth):
    """PATCH with If-Match: moving away lifts the conflict (both sides told); moving back
    makes it again (both sides alerted a second time)."""
    police, var = await auth("cross13.police"), await auth("cross83.police")
    ours, theirs, (lat, lon) = await conflicting_pair(client, auth)
    assert len(alerts(await notes_about(client, police, ours["id"]))) == 1

    assert (await patch(client, var, theirs["id"], None, lat=north(lat, 5000))).status_code == 428
    assert (await patch(client, var, theirs["id"], '"99"', lat=north(lat, 5000))).status_code == 412
    away = await patch(client, var, theirs["id"], theirs["etag"], lat=north(lat, 5000))
    assert away.status_code == 200, away.text
    assert away.json()["conflicts"] == [] and away.json()["version"] == theirs["version"] + 1
    assert away.headers["ETag"] != theirs["etag"]
    assert await conflicts_of(client, police, ours["id"]) == []
    assert len(lifted(await notes_about(client, police, ours["id"]))) == 1
    assert len(lifted(await notes_about(client, var, theirs["id"]))) == 1

    back = await patch(client, var, theirs["id"], away.headers["ETag"], lat=north(lat, 150))
    assert back.status_code == 200, back.text
    assert [c["operation_id"] for c in back.json()["conflicts"]] == [ours["id"]]
    assert [c["operation_id"] for c in await conflicts_of(client, police, ours["id"])] == [
        theirs["id"]
    ]
    assert len(alerts(await notes_about(client, police, ours["id"]))) == 2
    assert len(alerts(await notes_about(client, var, theirs["id"]))) == 2


async def test_moving_the_window_apart_lifts_the_conflict(client, auth):
    """A change of window alone (a PATCH of `starts_at` and `ends_at`) is checked too."""
    police, var = await auth("cross13.police"), await auth("cross83.police")
    ours, theirs, _ = await conflicting_pair(client, auth)
    ends = when(ours["ends_at"])
    moved = await patch(
        client,
        var,
        theirs["id"],
        theirs["etag"],
        starts_at=(ends + timedelta(days=1)).isoformat(),
        ends_at=(ends + timedelta(days=1, hours=3)).isoformat(),
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["conflicts"] == []
    assert await conflicts_of(client, police, ours["id"]) == []


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [timedelta(0), timedelta(hours=-1)])
async def test_a_plan_must_end_after_it_starts(client, auth, length):
    """Planning with ends_at <= starts_at: 422 naming `ends_at`."""
    lat, lon = spot()
    starts, _ = window()
    refused = await client.post(
        OPS, json=body(starts, starts + length, lat, lon), headers=await auth("cross13.police")
    )
    assert refused.status_code == 422, refused.text
    assert locs(refused) == [["body", "ends_at"]]


@pytest.mark.parametrize("length", [timedelta(0), timedelta(hours=-1)])
async def test_a_change_must_end_after_it_starts(client, auth, length):
    """Changing only `ends_at` to before the start: 422 naming `ends_at`, nothing
    changed."""
    police = await auth("cross13.police")
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(client, police, starts=starts, ends=ends, lat=lat, lon=lon)
    changed = await patch(
        client, police, ours["id"], ours["etag"], ends_at=(starts + length).isoformat()
    )
    assert changed.status_code == 422, changed.text
    assert locs(changed) == [["body", "ends_at"]]
    assert (await read(client, police, ours["id"])).json()["version"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"radius_m": 0}, "radius_m"),
        ({"radius_m": 50_001}, "radius_m"),
        ({"kind": "raid"}, "kind"),
        ({"lat": 90.5}, "lat"),
        ({"lon": -181}, "lon"),
    ],
)
async def test_invalid_plans_are_422(client, auth, change, field):
    """A radius out of 1..50 000 m, an unknown kind, a position off the globe: 422."""
    lat, lon = spot()
    starts, ends = window()
    response = await client.post(
        OPS, json={**body(starts, ends, lat, lon), **change}, headers=await auth("cross13.police")
    )
    assert response.status_code == 422, response.text
    assert locs(response) == [["body", field]]


@pytest.mark.parametrize("naive", ["starts_at", "both"])
async def test_a_plan_without_a_time_zone_is_refused(client, auth, naive):
    """A window without an offset is ambiguous (Paris or UTC: one or two hours apart,
    enough to miss a conflict): 422, as for a record's `occurred_at` — and never a crash
    when one end has an offset and the other not."""
    lat, lon = spot()
    starts, ends = window()
    plain = body(starts, ends, lat, lon)
    plain["starts_at"] = starts.replace(tzinfo=None).isoformat()
    if naive == "both":
        plain["ends_at"] = ends.replace(tzinfo=None).isoformat()
    response = await client.post(OPS, json=plain, headers=await auth("cross13.police"))
    assert response.status_code == 422, response.text


async def test_a_change_without_a_time_zone_is_refused(client, auth):
    """Moving `ends_at` to a time without an offset: 422, not a crash."""
    police = await auth("cross13.police")
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(client, police, starts=starts, ends=ends, lat=lat, lon=lon)
    later = (ends + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    changed = await patch(client, police, ours["id"], ours["etag"], ends_at=later)
    assert changed.status_code == 422, changed.text


@pytest.mark.parametrize("persona", ["ofast.analyste", "admin", "auditor", "douane-dnred"])
async def test_who_cannot_plan(client, auth, persona):
    """Analysts, platform roles and service clients plan nothing: 403."""
    lat, lon = spot()
    starts, ends = window()
    response = await client.post(
        OPS, json=body(starts, ends, lat, lon), headers=await auth(persona)
    )
    assert response.status_code == 403, response.text


async def test_an_analyst_of_a_cross_cannot_plan_nor_change(client, auth, new_user):
    """An analyst of CROSS-13 sees the unit's operations but plans and changes none."""
    user, password = await new_user("gendarmerie", "CROSS-13", "analyst")
    analyst = await user_headers(client, user, password)
    lat, lon = spot()
    starts, ends = window()
    refused = await client.post(OPS, json=body(starts, ends, lat, lon), headers=analyst)
    assert refused.status_code == 403, refused.text
    ours = await plan(
        client, await auth("cross13.police"), starts=starts, ends=ends, lat=lat, lon=lon
    )
    assert (await read(client, analyst, ours["id"])).status_code == 200
    changed = await patch(client, analyst, ours["id"], ours["etag"], radius_m=300)
    assert changed.status_code == 403, changed.text
    cancelled = await client.post(f"{OPS}/{ours['id']}/cancel", headers=analyst)
    assert cancelled.status_code == 403, cancelled.text


async def test_member_of_two_units_names_the_unit(client, auth, new_user):
    """An officer of two units names the planning unit, which must be one of theirs."""
    admin = await auth("admin")
    units = await unit_ids(client, admin)
    user, password = await new_user("police", "CROSS-13", "officer")
    added = await client.put(
        f"{API}/admin/users/{user['id']}/memberships",
        headers=admin,
        json={"unit_id": units["CROSS-83"], "role": "officer"},
    )
    assert added.status_code == 200, added.text
    headers = await user_headers(client, user, password)
    lat, lon = spot()
    starts, ends = window()

    unnamed = await client.post(OPS, json=body(starts, ends, lat, lon), headers=headers)
    assert unnamed.status_code == 422, unnamed.text
    assert locs(unnamed) == [["body", "unit_id"]]
    foreign = await client.post(
        OPS, json=body(starts, ends, lat, lon, unit_id=units["CROSS-59"]), headers=headers
    )
    assert foreign.status_code == 422, foreign.text
    assert locs(foreign) == [["body", "unit_id"]]
    named = await plan(
        client, headers, starts=starts, ends=ends, lat=lat, lon=lon, unit_id=units["CROSS-83"]
    )
    assert (named["unit_id"], named["unit_code"]) == (units["CROSS-83"], "CROSS-83")


# --- who sees what ------------------------------------------------------------------------


async def test_another_unit_sees_only_the_conflict(client, auth):
    """CROSS-83 cannot read, list, change or cancel a CROSS-13 operation; it sees it only
    as a conflict entry, without its address, case or position."""
    chef, var = await auth("cross13.chef"), await auth("cross83.police")
    opened = await client.post(
        f"{API}/cases", json={"title": "Filière go-fast", "priority": "high"}, headers=chef
    )
    assert opened.status_code == 201, opened.text
    case = opened.json()
    address = f"{random.randrange(1, 300)} chemin du Vallon {uuid.uuid4().hex[:8]}"
    lat, lon = spot()
    starts, ends = window()
    ours = await plan(
        client,
        chef,
        starts=starts,
        ends=ends,
        lat=lat,
        lon=lon,
        kind="arrest",
        address=address,
        case_id=case["id"],
    )
    assert (ours["address"], ours["case_id"]) == (address, case["id"])
    theirs = await plan(
        client, var, starts=starts, ends=ends, lat=north(lat, 100), lon=lon, kind="surveillance"
    )

    for persona in ("cross83.police", "marseille.chef", "ofast.chef", "admin", "auditor"):
        headers = await auth(persona)
        assert (await read(client, headers, ours["id"])).status_code == 404, persona
        assert ours["id"] not in await listed(client, headers), persona
    assert (await patch(client, var, ours["id"], ours["etag"], radius_m=10)).status_code == 404
    assert (await client.post(f"{OPS}/{ours['id']}/cancel", headers=var)).status_code == 404

    [conflict] = theirs["conflicts"]
    assert set(conflict) == CONFLICT_KEYS
    response = await read(client, var, theirs["id"])
    [entry] = response.json()["conflicts"]
    assert set(entry) == CONFLICT_KEYS
    assert (entry["operation_id"], entry["kind"]) == (ours["id"], "arrest")
    for text_seen in (
        response.text,
        (await client.get(OPS, params={"limit": 100}, headers=var)).text,
        str(await notes_about(client, var, theirs["id"])),
    ):
        assert address not in text_seen
        assert case["id"] not in text_seen and case["reference"] not in text_seen
        assert str(lat) not in text_seen


async def test_every_operation_route_leaves_its_audit_event(client, auth, db):
    """operation.create (with operation.conflict when one appears), operation.list,
    operation.read, operation.update, operation.cancel; a refused read leaves a denial."""
    police, var = await auth("cross13.police"), await auth("cross83.police")
    lat, lon = spot()
    starts, ends = window()

    response, rid = await send(client, "POST", OPS, police, json=body(starts, ends, lat, lon))
    assert response.status_code == 201, response.text
    ours = response.json()
    event = await the_event(db, rid, "operation.create")
    assert (event["outcome"], event["object_id"]) == ("success", ours["id"])

    response, rid = await send(
        client, "POST", OPS, var, json=body(starts, ends, north(lat, 100), lon)
    )
    assert response.status_code == 201, response.text
    theirs = response.json()
    assert (await the_event(db, rid, "operation.create"))["object_id"] == theirs["id"]
    conflict = await the_event(db, rid, "operation.conflict")
    assert conflict["object_id"] == ours["id"]
    assert conflict["details"]["with_operation"] == theirs["id"]

    response, rid = await send(client, "GET", OPS, police)
    assert response.status_code == 200
    assert (await the_event(db, rid, "operation.list"))["outcome"] == "success"

    response, rid = await send(client, "GET", f"{OPS}/{ours['id']}", police)
    assert response.status_code == 200
    event = await the_event(db, rid, "operation.read")
    assert (event["outcome"], event["object_id"]) == ("success", ours["id"])

    response, rid = await send(client, "GET", f"{OPS}/{ours['id']}", var)
    assert response.status_code == 404
    event = await the_event(db, rid, "operation.read")
    assert (event["outcome"], event["status"], event["object_id"]) == (
        "denied",
        404,
        ours["id"],
    )

    response, rid = await send(
        client,
        "PATCH",
        f"{OPS}/{ours['id']}",
        {**police, "If-Match": '"1"'},
        json={"radius_m": 120},
    )
    assert response.status_code == 200, response.text
    event = await the_event(db, rid, "operation.update")
    assert (event["outcome"], event["object_id"]) == ("success", ours["id"])

    response, rid = await send(client, "POST", f"{OPS}/{ours['id']}/cancel", police)
    assert response.status_code == 200, response.text
    event = await the_event(db, rid, "operation.cancel")
    assert (event["outcome"], event["object_id"]) == ("success", ours["id"])


async def test_two_units_planning_at_the_same_moment_are_both_alerted(client, auth, db):
    """CROSS-13 plans while CROSS-83 plans the same search: the two plannings overlap in
    time (CROSS-13's is not yet committed when CROSS-83's runs). Once both are made, the
    conflict exists, and both sides must have been alerted."""
    police, var = await auth("cross13.police"), await auth("cross83.police")
    me = (await client.get(f"{API}/me", headers=police)).json()["id"]
    lat, lon = spot()
    starts, ends = window()
    async with db.sessionmaker() as session:
        async with session.begin():
            principal = await load_principal(session, f"user:{me}")
            mine = await operations_service.create_operation(
                session,
                principal,
                OperationCreate.model_validate(body(starts, ends, lat, lon)),
            )
            ours_id = str(mine.id)
            racing = asyncio.create_task(
                client.post(OPS, json=body(starts, ends, north(lat, 50), lon), headers=var)
            )
            await asyncio.sleep(1)  # the other planning runs (or waits for this one)
        theirs = await asyncio.wait_for(racing, 30)
    assert theirs.status_code == 201, theirs.text
    theirs_id = theirs.json()["id"]

    assert [c["operation_id"] for c in await conflicts_of(client, police, ours_id)] == [theirs_id]
    assert len(alerts(await notes_about(client, police, ours_id))) == 1
    assert len(alerts(await notes_about(client, var, theirs_id))) == 1
