"""Sign-in and tokens: the OAuth2 grants, refresh rotation, lockout, revocation, the effect
of account changes on outstanding tokens, and forged or tampered JWTs."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from conftest import DEMO_CLIENT_SECRET, sign_in, unit_ids
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jose import jwt

TOKEN = "/api/v1/auth/token"
REVOKE = "/api/v1/auth/revoke"
ME = "/api/v1/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def assert_oauth_error(response, status: int, error: str) -> None:
    """RFC 6749 §5.2: JSON with `error` (and a description), never cached."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) <= {"error", "error_description", "error_uri"}
    assert body["error"] == error
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert response.headers["cache-control"] == "no-store"


def assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthorized"


async def password(client, username: str, pw: str):
    return await client.post(
        TOKEN, data={"grant_type": "password", "username": username, "password": pw}
    )


async def refresh(client, token: str):
    return await client.post(TOKEN, data={"grant_type": "refresh_token", "refresh_token": token})


async def make_client(client, auth, scopes=("records:read", "records:write")) -> tuple[dict, str]:
    admin = await auth("admin")
    units = await unit_ids(client, admin)
    response = await client.post(
        "/api/v1/admin/clients",
        headers=admin,
        json={
            "client_id": f"test-{uuid.uuid4().hex[:10]}",
            "name": "Test system",
            "unit_id": units["CROSS-13"],
            "agency": "douane",
            "scopes": list(scopes),
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["client"], response.json()["client_secret"]


# --- grants -------------------------------------------------------------------------------


async def test_password_grant(client, new_user):
    user, pw = await new_user()
    response = await password(client, user["username"], pw)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    assert set(body["scope"].split()) == {"records:read", "records:write"}
    assert body["access_token"] and body["refresh_token"]
    me = await client.get(ME, headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["name"] == user["username"]
    assert me.json()["kind"] == "user"


async def test_wrong_password_and_unknown_user_are_answered_alike(client, new_user):
    user, _ = await new_user()
    wrong = await password(client, user["username"], "not-the-password-at-all")
    unknown = await password(client, f"nobody.{uuid.uuid4().hex[:8]}", "not-the-password-at-all")
    assert_oauth_error(wrong, 400, "invalid_grant")
    assert (unknown.status_code, unknown.json()) == (wrong.status_code, wrong.json())


async def test_password_grant_requires_username_and_password(client):
    response = await client.post(TOKEN, data={"grant_type": "password", "username": "admin"})
    assert_oauth_error(response, 400, "invalid_request")


async def test_refresh_grant_rotates(client, new_user):
    user, pw = await new_user()
    first = await sign_in(client, user["username"], pw)
    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await client.get(ME, headers=bearer(second["access_token"]))).status_code == 200
    # The rotated-out token no longer works ...
    assert_oauth_error(await refresh(client, first["refresh_token"]), 400, "invalid_grant")


async def test_refresh_reuse_revokes_the_whole_family(client, new_user):
    user, pw = await new_user()
    first = await sign_in(client, user["username"], pw)
    other_sign_in = await sign_in(client, user["username"], pw)
    second = (await refresh(client, first["refresh_token"])).json()
    # Presenting the already-rotated token again is reuse: the whole family goes ...
    assert_oauth_error(await refresh(client, first["refresh_token"]), 400, "invalid_grant")
    # ... so the newest token of that family is refused too,
    assert_oauth_error(await refresh(client, second["refresh_token"]), 400, "invalid_grant")
    # while another sign-in of the same user is untouched.
    assert (await refresh(client, other_sign_in["refresh_token"])).status_code == 200


async def test_unknown_refresh_token(client):
    assert_oauth_error(await refresh(client, "not-a-refresh-token"), 400, "invalid_grant")


async def test_access_token_is_not_a_refresh_token(client, new_user):
    user, pw = await new_user()
    tokens = await sign_in(client, user["username"], pw)
    assert_oauth_error(await refresh(client, tokens["access_token"]), 400, "invalid_grant")


async def test_client_credentials_with_form_credentials(client):
    response = await client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": "douane-dnred",
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    assert set(body["scope"].split()) == {"records:read", "records:write"}
    me = (await client.get(ME, headers=bearer(body["access_token"]))).json()
    assert me["kind"] == "client"
    assert me["name"] == "douane-dnred"
    assert me["agency"] == "douane"
    assert me["max_marking"] == "NP"
    assert [m["unit_code"] for m in me["memberships"]] == ["CROSS-59"]


async def test_client_credentials_with_http_basic(client):
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic("douane-dnred", DEMO_CLIENT_SECRET),
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert (await client.get(ME, headers=bearer(token))).json()["name"] == "douane-dnred"


@pytest.mark.parametrize("how", ["form", "basic"])
async def test_client_credentials_wrong_secret(client, how):
    if how == "form":
        response = await client.post(
            TOKEN,
            data={
                "grant_type": "client_credentials",
                "client_id": "douane-dnred",
                "client_secret": "wrong-secret",
            },
        )
    else:
        response = await client.post(
            TOKEN,
            data={"grant_type": "client_credentials"},
            headers=basic("douane-dnred", "wrong-secret"),
        )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_client_credentials_unknown_client_and_missing_credentials(client):
    unknown = await client.post(
        TOKEN,
        data={
            "grant_type": "client_credentials",
            "client_id": "no-such-client",
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    assert_oauth_error(unknown, 401, "invalid_client")
    missing = await client.post(TOKEN, data={"grant_type": "client_credentials"})
    assert_oauth_error(missing, 401, "invalid_client")


async def test_client_credentials_scope_narrowing(client):
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": "records:read"},
        headers=basic("douane-dnred", DEMO_CLIENT_SECRET),
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "records:read"
    me = (await client.get(ME, headers=bearer(response.json()["access_token"]))).json()
    # The token carries the narrowed scope, not everything the client may have.
    assert me["scopes"] == ["records:read"]


@pytest.mark.parametrize("scope", ["records:read admin", "records:delete", "audit:read"])
async def test_client_credentials_scope_exceeding(client, scope):
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": scope},
        headers=basic("douane-dnred", DEMO_CLIENT_SECRET),
    )
    assert_oauth_error(response, 400, "invalid_scope")


async def test_client_credentials_scope_beyond_a_narrow_client(client, auth):
    created, secret = await make_client(client, auth, scopes=("records:read",))
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials", "scope": "records:write"},
        headers=basic(created["client_id"], secret),
    )
    assert_oauth_error(response, 400, "invalid_scope")


@pytest.mark.parametrize("grant_type", ["authorization_code", "implicit", "urn:x:unknown"])
async def test_unsupported_grant_type(client, grant_type):
    response = await client.post(TOKEN, data={"grant_type": grant_type})
    assert_oauth_error(response, 400, "unsupported_grant_type")


async def test_missing_grant_type_is_an_oauth_error(client):
    response = await client.post(TOKEN, data={"username": "admin", "password": "x"})
    assert_oauth_error(response, 400, "invalid_request")


# --- lockout --------------------------------------------------------------------------------


async def test_lockout_after_five_failures(client, new_user, auth):
    user, pw = await new_user()
    # Four failures then a success: the counter starts again.
    for _ in range(4):
        assert_oauth_error(
            await password(client, user["username"], "wrong-password-1"), 400, "invalid_grant"
        )
    assert (await password(client, user["username"], pw)).status_code == 200

    failures = [await password(client, user["username"], "wrong-password-2") for _ in range(5)]
    reference = (failures[0].status_code, failures[0].json())
    assert all((r.status_code, r.json()) == reference for r in failures)
    assert_oauth_error(failures[0], 400, "invalid_grant")

    # Locked: the right password is refused, answered exactly like a wrong one.
    locked = await password(client, user["username"], pw)
    assert (locked.status_code, locked.json()) == reference
    assert locked.headers.get("cache-control") == failures[0].headers.get("cache-control")

    admin = await auth("admin")
    users = (await client.get("/api/v1/admin/users", headers=admin)).json()
    listed = {u["username"]: u for u in users}
    assert listed[user["username"]]["locked_until"] is not None

    # Re-enabling the account by an admin clears the lockout.
    response = await client.patch(
        f"/api/v1/admin/users/{user['id']}", headers=admin, json={"is_active": True}
    )
    assert response.status_code == 200, response.text
    assert response.json()["locked_until"] is None
    assert (await password(client, user["username"], pw)).status_code == 200


# --- account changes take effect on the next request ------------------------------------


async def test_disabled_user_is_refused_on_next_request(client, new_user, auth):
    user, pw = await new_user()
    tokens = await sign_in(client, user["username"], pw)
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 200

    admin = await auth("admin")
    response = await client.patch(
        f"/api/v1/admin/users/{user['id']}", headers=admin, json={"is_active": False}
    )
    assert response.status_code == 200 and response.json()["is_active"] is False

    assert_unauthorized(await client.get(ME, headers=bearer(tokens["access_token"])))
    assert_oauth_error(await refresh(client, tokens["refresh_token"]), 400, "invalid_grant")
    disabled = await password(client, user["username"], pw)
    wrong = await password(client, user["username"], "wrong-password-3")
    assert (disabled.status_code, disabled.json()) == (wrong.status_code, wrong.json())


async def test_reenabling_does_not_revive_earlier_sign_ins(client, new_user, auth):
    user, pw = await new_user()
    tokens = await sign_in(client, user["username"], pw)
    admin = await auth("admin")
    for active in (False, True):
        response = await client.patch(
            f"/api/v1/admin/users/{user['id']}", headers=admin, json={"is_active": active}
        )
        assert response.status_code == 200
    assert_oauth_error(await refresh(client, tokens["refresh_token"]), 400, "invalid_grant")
    fresh = await sign_in(client, user["username"], pw)
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200


async def test_password_reset_ends_earlier_sign_ins(client, new_user, auth):
    user, pw = await new_user()
    tokens = await sign_in(client, user["username"], pw)
    response = await client.patch(
        f"/api/v1/admin/users/{user['id']}",
        headers=await auth("admin"),
        json={"password": "a-reset-password-456"},
    )
    assert response.status_code == 200
    assert_oauth_error(await refresh(client, tokens["refresh_token"]), 400, "invalid_grant")
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 401
    assert_oauth_error(await password(client, user["username"], pw), 400, "invalid_grant")
    fresh = await sign_in(client, user["username"], "a-reset-password-456")
    assert (await client.get(ME, headers=bearer(fresh["access_token"]))).status_code == 200
    assert (await refresh(client, fresh["refresh_token"])).status_code == 200


async def test_removed_membership_changes_on_next_request(client, new_user, auth):
    user, pw = await new_user(unit_code="CROSS-13", role="officer")
    token = (await sign_in(client, user["username"], pw))["access_token"]
    me = (await client.get(ME, headers=bearer(token))).json()
    assert [(m["unit_code"], m["role"]) for m in me["memberships"]] == [("CROSS-13", "officer")]

    admin = await auth("admin")
    units = await unit_ids(client, admin)
    response = await client.put(
        f"/api/v1/admin/users/{user['id']}/memberships",
        headers=admin,
        json={"unit_id": units["CROSS-83"], "role": "analyst"},
    )
    assert response.status_code == 200
    response = await client.delete(
        f"/api/v1/admin/users/{user['id']}/memberships/{units['CROSS-13']}", headers=admin
    )
    assert response.status_code == 204

    me = (await client.get(ME, headers=bearer(token))).json()
    assert [(m["unit_code"], m["role"]) for m in me["memberships"]] == [("CROSS-83", "analyst")]


async def test_disabled_client_is_refused_on_next_request(client, auth):
    created, secret = await make_client(client, auth)
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(created["client_id"], secret),
    )
    token = response.json()["access_token"]
    assert (await client.get(ME, headers=bearer(token))).status_code == 200

    admin = await auth("admin")
    response = await client.post(f"/api/v1/admin/clients/{created['id']}/disable", headers=admin)
    assert response.status_code == 200 and response.json()["is_active"] is False

    assert_unauthorized(await client.get(ME, headers=bearer(token)))
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(created["client_id"], secret),
    )
    assert_oauth_error(response, 401, "invalid_client")


# --- revocation (RFC 7009) -----------------------------------------------------------------


async def test_revoke_refresh_token(client, new_user):
    user, pw = await new_user()
    tokens = await sign_in(client, user["username"], pw)
    response = await client.post(
        REVOKE, data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert_oauth_error(await refresh(client, tokens["refresh_token"]), 400, "invalid_grant")


async def test_revoke_refresh_token_revokes_its_rotated_successors(client, new_user):
    user, pw = await new_user()
    first = await sign_in(client, user["username"], pw)
    second = (await refresh(client, first["refresh_token"])).json()
    assert (await client.post(REVOKE, data={"token": first["refresh_token"]})).status_code == 200
    assert_oauth_error(await refresh(client, second["refresh_token"]), 400, "invalid_grant")


async def test_revoke_access_token(client, new_user):
    user, pw = await new_user()
    tokens = await sign_in(client, user["username"], pw)
    other = await sign_in(client, user["username"], pw)
    assert (await client.get(ME, headers=bearer(tokens["access_token"]))).status_code == 200
    response = await client.post(
        REVOKE, data={"token": tokens["access_token"], "token_type_hint": "access_token"}
    )
    assert response.status_code == 200
    assert_unauthorized(await client.get(ME, headers=bearer(tokens["access_token"])))
    # Revoking it twice is harmless; another token of the same user still works.
    assert (await client.post(REVOKE, data={"token": tokens["access_token"]})).status_code == 200
    assert (await client.get(ME, headers=bearer(other["access_token"]))).status_code == 200


async def test_revoke_unknown_token_is_answered_200(client):
    response = await client.post(REVOKE, data={"token": "whatever-this-is"})
    assert response.status_code == 200


async def test_revoke_without_a_token_is_an_oauth_error(client):
    assert_oauth_error(await client.post(REVOKE, data={}), 400, "invalid_request")


# --- forged and tampered JWTs ---------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict) -> str:
    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())


@pytest.fixture(scope="module")
def rsa_key():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


@pytest.fixture
async def victim(client, auth) -> str:
    """The subject an attacker would like to be: the platform admin."""
    me = (await client.get(ME, headers=await auth("admin"))).json()
    return f"user:{me['id']}"


def claims_for(settings, subject: str, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "scope": "records:read records:write",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def signed(settings, claims: dict) -> str:
    return jwt.encode(claims, settings.signing_key.get_secret_value(), algorithm="HS256")


async def test_well_formed_token_with_the_real_key_is_accepted(client, settings, victim):
    """The control for every attack below: these claims, signed properly, do work."""
    response = await client.get(ME, headers=bearer(signed(settings, claims_for(settings, victim))))
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "admin"


async def test_alg_none_is_refused(client, settings, victim):
    claims = claims_for(settings, victim)
    for alg in ("none", "None", "NONE"):
        token = unsigned({"alg": alg, "typ": "JWT"}, claims) + "."
        assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_token_signed_with_another_key_is_refused(client, settings, victim):
    token = jwt.encode(
        claims_for(settings, victim), "another-key-entirely-0123456789abcdef", algorithm="HS256"
    )
    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_rs256_token_is_refused(client, settings, victim, rsa_key):
    private_pem, _ = rsa_key
    token = jwt.encode(claims_for(settings, victim), private_pem.decode(), algorithm="RS256")
    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_hs256_token_keyed_with_an_rsa_public_key_is_refused(
    client, settings, victim, rsa_key
):
    _, public_pem = rsa_key
    for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
        head_and_body = unsigned({"alg": alg, "typ": "JWT"}, claims_for(settings, victim))
        signature = hmac.new(public_pem, head_and_body.encode(), digest).digest()
        token = head_and_body + "." + b64url(signature)
        assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_hs512_with_the_real_key_is_refused(client, settings, victim):
    """Only the one pinned algorithm is accepted, even with the right key."""
    token = jwt.encode(
        claims_for(settings, victim), settings.signing_key.get_secret_value(), algorithm="HS512"
    )
    assert_unauthorized(await client.get(ME, headers=bearer(token)))


HOUR = 3600


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param(
            lambda now: {"exp": now - HOUR, "iat": now - 2 * HOUR, "nbf": now - 2 * HOUR},
            id="expired",
        ),
        pytest.param(lambda now: {"nbf": now + HOUR}, id="nbf-in-the-future"),
        pytest.param(lambda now: {"iat": now + HOUR, "nbf": None}, id="iat-in-the-future"),
        pytest.param(lambda now: {"aud": "another-api"}, id="wrong-aud"),
        pytest.param(lambda now: {"aud": None}, id="missing-aud"),
        pytest.param(lambda now: {"iss": "someone-else"}, id="wrong-iss"),
        pytest.param(lambda now: {"iss": None}, id="missing-iss"),
        pytest.param(lambda now: {"jti": None}, id="missing-jti"),
        pytest.param(lambda now: {"exp": None}, id="missing-exp"),
        pytest.param(lambda now: {"iat": None}, id="missing-iat"),
        pytest.param(lambda now: {"sub": None}, id="missing-sub"),
        pytest.param(lambda now: {"sub": "user:not-a-uuid"}, id="garbled-sub"),
        pytest.param(lambda now: {"sub": f"user:{uuid.uuid4()}"}, id="unknown-user"),
        pytest.param(lambda now: {"sub": f"robot:{uuid.uuid4()}"}, id="unknown-kind"),
        pytest.param(lambda now: {"exp": "tomorrow"}, id="exp-not-a-number"),
    ],
)
async def test_bad_claims_are_refused(client, settings, victim, overrides):
    token = signed(settings, claims_for(settings, victim, **overrides(int(time.time()))))
    assert_unauthorized(await client.get(ME, headers=bearer(token)))


async def test_altered_payload_is_refused(client, new_user, victim):
    user, pw = await new_user()
    token = (await sign_in(client, user["username"], pw))["access_token"]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == f"user:{user['id']}"
    claims["sub"] = victim
    forged = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
    assert_unauthorized(await client.get(ME, headers=bearer(forged)))
    # The untouched token still works: the refusal is about the change.
    assert (await client.get(ME, headers=bearer(token))).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic YWRtaW46eA==", "Token abc", "Bearer not.a.jwt", "Bearer a.b"],
)
async def test_malformed_authorization_headers(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    assert_unauthorized(await client.get(ME, headers=headers))


async def test_missing_token_challenge_carries_no_error_code(client):
    """RFC 6750 §3.1: a request without credentials gets a bare challenge."""
    response = await client.get(ME)
    assert_unauthorized(response)
    assert "error=" not in response.headers["www-authenticate"]
    bad = await client.get(ME, headers=bearer("not.a.jwt"))
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
