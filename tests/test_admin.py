"""Platform administration: users, memberships, units, service clients; the unit tree."""

import base64
import uuid

import pytest
from conftest import sign_in, unit_ids

from app.services.demo import ANTENNES, PERSONAS

TOKEN = "/api/v1/auth/token"
NON_ADMINS = [p[0] for p in PERSONAS if "admin" not in p[3]] + ["douane-dnred"]


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def client_token(client, client_id: str, secret: str):
    return await client.post(
        TOKEN, data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )


@pytest.fixture
async def admin(auth) -> dict[str, str]:
    return await auth("admin")


@pytest.fixture
async def units(client, admin) -> dict[str, str]:
    return await unit_ids(client, admin)


# --- users and memberships ----------------------------------------------------------------


async def test_admin_creates_and_lists_users(client, admin):
    username = f"t.{uuid.uuid4().hex[:10]}"
    password = "a-long-password-for-" + username
    response = await client.post(
        "/api/v1/admin/users",
        headers=admin,
        json={
            "username": username,
            "display_name": "Nouvel officier",
            "agency": "gendarmerie",
            "password": password,
            "email": f"{username}@example.org",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["username"] == username
    assert created["agency"] == "gendarmerie"
    assert created["is_active"] is True and created["platform_roles"] == []
    assert "password" not in created and "password_hash" not in created
    assert password not in response.text

    listed = (await client.get("/api/v1/admin/users", headers=admin)).json()
    names = [u["username"] for u in listed]
    assert username in names and "admin" in names and "cross13.police" in names
    assert names == sorted(names)
    assert all("password_hash" not in u for u in listed)

    # The new account can sign in, and holds no unit yet.
    token = (await sign_in(client, username, password))["access_token"]
    me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["memberships"] == [] and me["agency"] == "gendarmerie"


async def test_duplicate_username_is_a_conflict(client, admin, new_user):
    user, _ = await new_user()
    response = await client.post(
        "/api/v1/admin/users",
        headers=admin,
        json={
            "username": user["username"],
            "display_name": "Twin",
            "agency": "police",
            "password": "another-long-password",
        },
    )
    assert response.status_code == 409
    assert response.json()["code"] == "user_exists"


async def test_memberships_add_change_remove(client, admin, units, new_user):
    user, _ = await new_user(unit_code=None)
    base = f"/api/v1/admin/users/{user['id']}/memberships"
    assert (await client.get(base, headers=admin)).json() == []

    added = await client.put(
        base, headers=admin, json={"unit_id": units["CROSS-13"], "role": "officer"}
    )
    assert added.status_code == 200, added.text
    assert added.json()["unit_code"] == "CROSS-13" and added.json()["role"] == "officer"
    other = await client.put(
        base, headers=admin, json={"unit_id": units["ANT-MARSEILLE"], "role": "analyst"}
    )
    assert other.status_code == 200

    changed = await client.put(
        base, headers=admin, json={"unit_id": units["CROSS-13"], "role": "supervisor"}
    )
    assert changed.status_code == 200
    assert changed.json()["id"] == added.json()["id"]
    assert changed.json()["role"] == "supervisor"

    listed = (await client.get(base, headers=admin)).json()
    assert sorted((m["unit_code"], m["role"]) for m in listed) == [
        ("ANT-MARSEILLE", "analyst"),
        ("CROSS-13", "supervisor"),
    ]

    removed = await client.delete(f"{base}/{units['CROSS-13']}", headers=admin)
    assert removed.status_code == 204
    assert [
        (m["unit_code"], m["role"]) for m in (await client.get(base, headers=admin)).json()
    ] == [("ANT-MARSEILLE", "analyst")]
    again = await client.delete(f"{base}/{units['CROSS-13']}", headers=admin)
    assert again.status_code == 404


async def test_membership_errors(client, admin, units, new_user):
    user, _ = await new_user(unit_code=None)
    base = f"/api/v1/admin/users/{user['id']}/memberships"
    bad_role = await client.put(
        base, headers=admin, json={"unit_id": units["CROSS-13"], "role": "boss"}
    )
    assert bad_role.status_code == 422
    assert ["body", "role"] in [e["loc"] for e in bad_role.json()["errors"]]
    unknown_unit = await client.put(
        base, headers=admin, json={"unit_id": str(uuid.uuid4()), "role": "officer"}
    )
    assert unknown_unit.status_code in (404, 422)
    unknown_user = await client.put(
        f"/api/v1/admin/users/{uuid.uuid4()}/memberships",
        headers=admin,
        json={"unit_id": units["CROSS-13"], "role": "officer"},
    )
    assert unknown_user.status_code == 404


async def test_admin_sets_a_password(client, admin, new_user):
    user, old = await new_user()
    new = "a-brand-new-password-123"
    response = await client.patch(
        f"/api/v1/admin/users/{user['id']}", headers=admin, json={"password": new}
    )
    assert response.status_code == 200
    assert (
        await client.post(
            TOKEN, data={"grant_type": "password", "username": user["username"], "password": old}
        )
    ).status_code == 400
    await sign_in(client, user["username"], new)


# --- units ----------------------------------------------------------------------------------


async def test_admin_creates_units(client, admin, units):
    code = f"DET-T{uuid.uuid4().hex[:6].upper()}"
    response = await client.post(
        "/api/v1/admin/units",
        headers=admin,
        json={
            "code": code,
            "name": "Détachement de test",
            "kind": "detachement",
            "parent_id": units["ANT-LYON"],
        },
    )
    assert response.status_code == 201, response.text
    det = response.json()
    assert det["code"] == code and det["parent_id"] == units["ANT-LYON"]

    cross = await client.post(
        "/api/v1/admin/units",
        headers=admin,
        json={
            "code": f"CROSS-T{uuid.uuid4().hex[:6].upper()}",
            "name": "CROSS de test",
            "kind": "cross",
            "parent_id": det["id"],
            "departement": "2A",
        },
    )
    assert cross.status_code == 201, cross.text
    assert cross.json()["departement"] == "2A"

    fetched = await client.get(f"/api/v1/units/{cross.json()['id']}", headers=admin)
    assert fetched.status_code == 200 and fetched.json()["parent_id"] == det["id"]

    renamed = await client.patch(
        f"/api/v1/admin/units/{det['id']}", headers=admin, json={"name": "Détachement renommé"}
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Détachement renommé"


@pytest.mark.parametrize(
    ("kind", "parent", "departement"),
    [
        ("cross", "OFAST", "13"),  # a CROSS sits under an antenne or détachement
        ("antenne", "ANT-LILLE", None),  # an antenne sits under OFAST
        ("pole", "CROSS-13", None),
        ("detachement", "OFAST-STRATEGIE", None),
        ("antenne", None, None),  # only the national office has no parent
    ],
)
async def test_bad_parent_kind_names_parent_id(client, admin, units, kind, parent, departement):
    response = await client.post(
        "/api/v1/admin/units",
        headers=admin,
        json={
            "code": f"BAD-{uuid.uuid4().hex[:6].upper()}",
            "name": "Mal placée",
            "kind": kind,
            "parent_id": units[parent] if parent else None,
            "departement": departement,
        },
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_error"
    assert [e["loc"] for e in body["errors"]] == [["body", "parent_id"]]


async def test_unknown_parent_names_parent_id(client, admin):
    response = await client.post(
        "/api/v1/admin/units",
        headers=admin,
        json={
            "code": f"BAD-{uuid.uuid4().hex[:6].upper()}",
            "name": "Orpheline",
            "kind": "antenne",
            "parent_id": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "parent_id"]]


async def test_cross_needs_a_departement(client, admin, units):
    response = await client.post(
        "/api/v1/admin/units",
        headers=admin,
        json={
            "code": f"CROSS-T{uuid.uuid4().hex[:6].upper()}",
            "name": "Sans département",
            "kind": "cross",
            "parent_id": units["ANT-LILLE"],
        },
    )
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "departement"]]


async def test_duplicate_unit_code_is_a_conflict(client, admin, units):
    body = {
        "code": f"DET-T{uuid.uuid4().hex[:6].upper()}",
        "name": "Détachement",
        "kind": "detachement",
        "parent_id": units["OFAST"],
    }
    assert (await client.post("/api/v1/admin/units", headers=admin, json=body)).status_code == 201
    again = await client.post("/api/v1/admin/units", headers=admin, json=body)
    assert again.status_code == 409
    assert again.json()["code"] == "unit_exists"
    existing = await client.post(
        "/api/v1/admin/units", headers=admin, json={**body, "code": "CROSS-13"}
    )
    assert existing.status_code == 409


async def test_unit_tree(client, auth):
    response = await client.get("/api/v1/units", headers=await auth("cross13.police"))
    assert response.status_code == 200
    roots = response.json()
    assert [r["code"] for r in roots] == ["OFAST"]
    ofast = roots[0]
    assert ofast["kind"] == "national" and ofast["parent_id"] is None
    by_kind: dict[str, list[dict]] = {}
    for child in ofast["children"]:
        assert child["parent_id"] == ofast["id"]
        by_kind.setdefault(child["kind"], []).append(child)
    assert sorted(c["code"] for c in by_kind["pole"]) == [
        "OFAST-OPERATIONS",
        "OFAST-RENSEIGNEMENT",
        "OFAST-STRATEGIE",
    ]
    antennes = {c["code"]: c for c in by_kind["antenne"]}
    assert len(antennes) == 14
    assert set(antennes) == {f"ANT-{k}" for k in ANTENNES}
    marseille = {c["code"]: c for c in antennes["ANT-MARSEILLE"]["children"]}
    assert {"CROSS-13", "CROSS-83"} <= set(marseille)
    assert marseille["CROSS-13"]["departement"] == "13"
    assert marseille["CROSS-13"]["parent_id"] == antennes["ANT-MARSEILLE"]["id"]
    lille = {c["code"] for c in antennes["ANT-LILLE"]["children"]}
    assert "CROSS-59" in lille and "CROSS-13" not in lille
    assert all(p["children"] == [] for p in by_kind["pole"])

    def walk(nodes):
        for node in nodes:
            yield node
            yield from walk(node["children"])

    codes = [n["code"] for n in walk(roots)]
    assert len(codes) == len(set(codes))  # each unit appears once


# --- service clients ------------------------------------------------------------------------


async def test_client_lifecycle(client, admin, units):
    client_id = f"test-{uuid.uuid4().hex[:10]}"
    response = await client.post(
        "/api/v1/admin/clients",
        headers=admin,
        json={
            "client_id": client_id,
            "name": "Système de test",
            "unit_id": units["CROSS-83"],
            "agency": "gendarmerie",
            "scopes": ["records:read"],
            "max_marking": "DR",
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created["client_secret"]
    assert len(secret) >= 32
    info = created["client"]
    assert info["client_id"] == client_id and info["is_active"] is True
    assert info["scopes"] == ["records:read"] and info["max_marking"] == "DR"

    # Shown once: the listing never carries it.
    listing = await client.get("/api/v1/admin/clients", headers=admin)
    assert listing.status_code == 200
    assert client_id in [c["client_id"] for c in listing.json()]
    assert secret not in listing.text
    assert all("secret" not in key for c in listing.json() for key in c)

    granted = await client_token(client, client_id, secret)
    assert granted.status_code == 200, granted.text
    me = (
        await client.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {granted.json()['access_token']}"}
        )
    ).json()
    assert me["kind"] == "client" and me["agency"] == "gendarmerie"
    assert me["max_marking"] == "DR" and me["scopes"] == ["records:read"]
    assert [m["unit_code"] for m in me["memberships"]] == ["CROSS-83"]

    rotated = await client.post(f"/api/v1/admin/clients/{info['id']}/rotate", headers=admin)
    assert rotated.status_code == 200
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    assert (await client_token(client, client_id, secret)).status_code == 401
    assert (await client_token(client, client_id, new_secret)).status_code == 200

    disabled = await client.post(f"/api/v1/admin/clients/{info['id']}/disable", headers=admin)
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert (await client_token(client, client_id, new_secret)).status_code == 401


async def test_client_errors(client, admin, units):
    body = {
        "client_id": f"test-{uuid.uuid4().hex[:10]}",
        "name": "Système",
        "unit_id": units["CROSS-13"],
        "agency": "police",
        "scopes": ["records:read"],
    }
    assert (await client.post("/api/v1/admin/clients", headers=admin, json=body)).status_code == 201
    again = await client.post("/api/v1/admin/clients", headers=admin, json=body)
    assert again.status_code == 409 and again.json()["code"] == "client_exists"
    bad_scope = await client.post(
        "/api/v1/admin/clients",
        headers=admin,
        json={**body, "client_id": "x-" + body["client_id"], "scopes": ["admin"]},
    )
    assert bad_scope.status_code == 422
    assert bad_scope.json()["errors"][0]["loc"][:2] == ["body", "scopes"]
    assert (
        await client.post(f"/api/v1/admin/clients/{uuid.uuid4()}/rotate", headers=admin)
    ).status_code == 404


# --- who may administer -----------------------------------------------------------------


@pytest.mark.parametrize("who", NON_ADMINS)
async def test_non_admins_get_403_on_admin_routes(client, auth, units, who):
    headers = await auth(who)
    unit = units["CROSS-13"]
    some_user = str(uuid.uuid4())
    attempts = [
        ("GET", "/api/v1/admin/users", None),
        (
            "POST",
            "/api/v1/admin/users",
            {
                "username": f"t.{uuid.uuid4().hex[:8]}",
                "display_name": "x",
                "agency": "police",
                "password": "a-long-enough-password",
            },
        ),
        ("PATCH", f"/api/v1/admin/users/{some_user}", {"is_active": False}),
        ("GET", f"/api/v1/admin/users/{some_user}/memberships", None),
        (
            "PUT",
            f"/api/v1/admin/users/{some_user}/memberships",
            {"unit_id": unit, "role": "supervisor"},
        ),
        ("DELETE", f"/api/v1/admin/users/{some_user}/memberships/{unit}", None),
        (
            "POST",
            "/api/v1/admin/units",
            {
                "code": f"DET-{uuid.uuid4().hex[:6].upper()}",
                "name": "Détachement",
                "kind": "detachement",
                "parent_id": units["OFAST"],
            },
        ),
        ("PATCH", f"/api/v1/admin/units/{unit}", {"name": "Renamed by a non-admin"}),
        ("GET", "/api/v1/admin/clients", None),
        (
            "POST",
            "/api/v1/admin/clients",
            {
                "client_id": f"x-{uuid.uuid4().hex[:8]}",
                "name": "x",
                "unit_id": unit,
                "agency": "police",
                "scopes": ["records:read"],
            },
        ),
        ("POST", f"/api/v1/admin/clients/{uuid.uuid4()}/rotate", None),
        ("POST", f"/api/v1/admin/clients/{uuid.uuid4()}/disable", None),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code == 403, f"{who}: {method} {path}: {response.text}"
        assert response.json()["code"] == "forbidden"
    name = (await client.get(f"/api/v1/units/{unit}", headers=headers)).json()["name"]
    assert name != "Renamed by a non-admin"


async def test_admin_me_has_no_memberships(client, auth):
    me = (await client.get("/api/v1/me", headers=await auth("admin"))).json()
    assert me["kind"] == "user" and me["name"] == "admin"
    assert me["platform_roles"] == ["admin"]
    assert me["memberships"] == []


async def test_personas_me(client, auth):
    for username, _, agency, roles, membership in PERSONAS:
        me = (await client.get("/api/v1/me", headers=await auth(username))).json()
        assert me["agency"] == agency
        assert me["platform_roles"] == sorted(roles)
        expected = [(membership[0], membership[1])] if membership else []
        assert [(m["unit_code"], m["role"]) for m in me["memberships"]] == expected


async def test_there_is_one_national_unit(client, admin):
    response = await client.post(
        "/api/v1/admin/units",
        headers=admin,
        json={
            "code": f"NAT-{uuid.uuid4().hex[:6].upper()}",
            "name": "Second office",
            "kind": "national",
        },
    )
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "kind"]]
