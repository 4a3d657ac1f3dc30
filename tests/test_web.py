"""The web client's sessions: sign-in, the cookie, CSRF, idle and absolute limits, sign-out,
the live event stream, error pages, the dashboard, and what the audit trail records.

Pages are served by the same app as the API; these tests drive them with httpx (no
browser); tests/test_web_browser.py drives them in Chromium.
"""

import json
import re
import uuid

import conftest
import httpx
import pytest
from conftest import (
    CSRF_FIELD,
    DEMO_PASSWORD,
    WebUser,
    escalated_case,
    record_body,
    web_sign_in,
)
from sqlalchemy import text
from test_routes import web_page_routes

send = conftest.send

SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]+)"')


def fresh_client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="http://testserver",
    )


async def sign_in_form(client: httpx.AsyncClient, username: str, password: str, **extra):
    """GET the form, then POST it with its token (and `extra` fields over it), with a
    request id of its own (`answer.request.headers["X-Request-ID"]`)."""
    form = await client.get("/connexion")
    token = SIGN_IN_TOKEN.search(form.text).group(1)
    data = {"username": username, "password": password, "sign_in_token": token, "next": "/"}
    data.update(extra)
    answer, _ = await send(client, "POST", "/connexion", data=data)
    return answer


async def set_session_times(db, user: WebUser, *, idle_minutes: int = 0, expired: bool = False):
    """Age every session of the user behind `user` (as if time had passed)."""
    me = await user.get("/")
    name = re.search(r'<span class="user">([^<]+)</span>', me.text).group(1)
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "update web_sessions set last_seen_at = now() - make_interval(mins => :m),"
                " expires_at = case when :expired then now() - interval '1 second'"
                " else expires_at end"
                " where user_id = (select id from users where username = :u)"
            ),
            {"m": idle_minutes, "expired": expired, "u": name},
        )


# --- sign-in ----------------------------------------------------------------------------


async def test_sign_in_sets_a_strict_http_only_cookie(app):
    async with fresh_client(app) as client:
        answer = await sign_in_form(client, "cross13.police", DEMO_PASSWORD)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("crossintel_session=")
        )
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert "httponly" in attributes and "samesite=strict" in attributes
        assert "secure" not in attributes  # plain http here
        page = await client.get("/")
        assert page.status_code == 200
        assert "cross13.police" in page.text and "Tableau de bord" in page.text


async def test_cookie_is_secure_over_https(app):
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
        base_url="https://testserver",
    )
    async with client:
        answer = await sign_in_form(client, "cross13.police", DEMO_PASSWORD)
        cookie = next(
            c for c in answer.headers.get_list("set-cookie") if c.startswith("crossintel_session=")
        )
        assert "secure" in {part.strip().lower() for part in cookie.split(";")}


async def test_wrong_password_keeps_the_name_and_says_so_in_french(app):
    async with fresh_client(app) as client:
        answer = await sign_in_form(client, "cross13.police", "not-the-password")
        assert answer.status_code == 400
        assert "Identifiant ou mot de passe incorrect." in answer.text
        assert 'value="cross13.police"' in answer.text
        assert "crossintel_session=" not in answer.headers.get("set-cookie", "")
        assert (await client.get("/")).status_code == 303


async def test_sign_in_without_its_form_token_is_refused(app):
    """Login CSRF: the sign-in form's token must match the cookie set with the form."""
    async with fresh_client(app) as client:
        answer = await sign_in_form(
            client, "cross13.police", DEMO_PASSWORD, sign_in_token="forged-token"
        )
        assert answer.status_code == 403
        assert "Le formulaire a expiré" in answer.text
        assert (await client.get("/")).status_code == 303


async def test_web_and_api_share_the_lockout(app, client, new_user, settings):
    """Failed web sign-ins count towards the same lockout as the API's."""
    user, password = await new_user()
    async with fresh_client(app) as browser:
        for _ in range(settings.lockout_threshold):
            await sign_in_form(browser, user["username"], "wrong-password")
        locked = await sign_in_form(browser, user["username"], password)
        assert locked.status_code == 400
    api = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user["username"], "password": password},
    )
    assert api.status_code == 400 and api.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "target, expected",
    [
        ("/recherche?q=port", "/recherche?q=port"),
        ("https://elsewhere.example/", "/"),
        ("//elsewhere.example/", "/"),
        ("/\\elsewhere.example/", "/"),
    ],
)
async def test_sign_in_returns_only_to_a_page_of_this_site(app, target, expected):
    async with fresh_client(app) as client:
        answer = await sign_in_form(client, "cross13.police", DEMO_PASSWORD, next=target)
        assert answer.status_code == 303 and answer.headers["location"] == expected


async def test_a_stranger_is_sent_to_sign_in_and_back(app):
    async with fresh_client(app) as client:
        answer = await client.get("/recherche?q=port")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/connexion?suite=%2Frecherche%3Fq%3Dport"
        form = await client.get(answer.headers["location"])
        assert 'name="next" value="/recherche?q=port"' in form.text


# --- CSRF -------------------------------------------------------------------------------


async def test_forms_without_the_csrf_token_are_refused(web):
    user = await web("cross13.police")
    missing = await user.client.post("/deconnexion", data={})
    assert missing.status_code == 403
    assert "jeton de sécurité" in missing.text
    wrong = await user.client.post("/deconnexion", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    # Still signed in: the refused form did nothing.
    assert (await user.get("/")).status_code == 200
    by_header = await user.client.post("/deconnexion", headers={"X-CSRF-Token": user.csrf_token})
    assert by_header.status_code == 303
    assert (await user.get("/")).status_code == 303


async def test_a_session_token_does_not_fit_another_session(app, web):
    first = await web("cross13.police")
    second = await web("cross13.police")
    assert first.csrf_token != second.csrf_token
    crossed = await first.client.post("/deconnexion", data={"csrf_token": second.csrf_token})
    assert crossed.status_code == 403


# --- limits and sign-out -----------------------------------------------------------------


async def test_idle_session_ends_and_says_why(app, db, web, settings):
    user = await web("cross13.douane")
    await set_session_times(db, user, idle_minutes=settings.web_idle_minutes - 1)
    assert (await user.get("/")).status_code == 200  # activity: the clock starts again
    await set_session_times(db, user, idle_minutes=settings.web_idle_minutes + 1)
    answer = await user.get("/")
    assert answer.status_code == 303
    assert "raison=expiree" in answer.headers["location"]
    page = await user.get(answer.headers["location"])
    assert "Votre session a pris fin" in page.text


async def test_session_ends_at_its_absolute_limit_even_when_active(app, db, web):
    user = await web("cross13.douane")
    await set_session_times(db, user, expired=True)
    assert (await user.get("/")).status_code == 303


async def test_sign_out_ends_the_session_for_good(app, web):
    user = await web("cross13.police")
    cookie = user.client.cookies.get("crossintel_session")
    out = await user.post("/deconnexion")
    assert out.status_code == 303 and out.headers["location"] == "/connexion?raison=deconnexion"
    assert (await user.get("/")).status_code == 303
    # The old cookie, replayed, opens nothing.
    async with fresh_client(app) as other:
        other.cookies.set("crossintel_session", cookie)
        assert (await other.get("/")).status_code == 303


@pytest.mark.parametrize(
    "change", [{"is_active": False}, {"password": "a-new-long-password-for-test"}]
)
async def test_disabling_or_resetting_the_account_ends_its_web_sessions(
    app, client, auth, new_user, change
):
    user, password = await new_user()
    browser = await web_sign_in(app, user["username"], password)
    try:
        assert (await browser.get("/")).status_code == 200
        answer = await client.patch(
            f"/api/v1/admin/users/{user['id']}", headers=await auth("admin"), json=change
        )
        assert answer.status_code == 200, answer.text
        assert (await browser.get("/")).status_code == 303
    finally:
        await browser.client.aclose()


# --- pages and errors --------------------------------------------------------------------


async def test_unknown_page_is_an_html_404_and_the_api_keeps_problem_json(web, client):
    user = await web("cross13.police")
    page = await user.get("/nulle-part")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "Page introuvable" in page.text
    api = await client.get("/api/v1/nowhere")
    assert api.status_code == 404
    assert api.headers["content-type"].startswith("application/problem+json")


async def test_static_files_are_served_without_sign_in(app):
    async with fresh_client(app) as client:
        css = await client.get("/static/crossintel.css")
        js = await client.get("/static/crossintel.js")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert js.status_code == 200 and "EventSource" in js.text


async def test_pages_are_not_cached(web):
    user = await web("cross13.police")
    assert (await user.get("/")).headers["cache-control"] == "no-store"


async def test_dashboard_shows_my_units_records_and_not_others(web, client, auth):
    """The dashboard's lists come from the policy: a douane `agency` record of the same
    unit is not among cross13.police's latest records."""
    police, douane = await auth("cross13.police"), await auth("cross13.douane")
    mine_title = f"Guetteurs rue de Lyon {uuid.uuid4().hex[:6]}"
    theirs_title = f"Conteneur douane seul {uuid.uuid4().hex[:6]}"
    answer = await client.post("/api/v1/records", headers=police, json=record_body(mine_title))
    assert answer.status_code == 201, answer.text
    answer = await client.post(
        "/api/v1/records", headers=douane, json=record_body(theirs_title, scope="agency")
    )
    assert answer.status_code == 201, answer.text
    page = await (await web("cross13.police")).get("/")
    assert mine_title in page.text and theirs_title not in page.text
    page = await (await web("cross13.douane")).get("/")
    assert mine_title in page.text and theirs_title in page.text


async def test_dashboard_shows_pending_escalations_to_supervisors(web, client, auth):
    title = f"Filière go-fast A7 {uuid.uuid4().hex[:6]}"
    await escalated_case(client, await auth("cross13.chef"), title, priority="urgent")
    reviewer = await (await web("marseille.chef")).get("/")
    assert "Escalades en attente de décision" in reviewer.text
    assert title in reviewer.text
    officer = await (await web("cross13.police")).get("/")
    assert "Escalades en attente de décision" not in officer.text


# --- the audit trail ----------------------------------------------------------------------


async def test_web_sign_in_and_out_are_audited(app, db):
    async with fresh_client(app) as client:
        answer = await sign_in_form(client, "cross13.gendarme", DEMO_PASSWORD)
        assert answer.status_code == 303
        event = await conftest.the_event(db, answer.request.headers["X-Request-ID"])
        assert (event["action"], event["outcome"], event["actor_name"]) == (
            "auth.sign_in",
            "success",
            "cross13.gendarme",
        )
        assert event["details"]["via"] == "web"
        page = await client.get("/")
        csrf = CSRF_FIELD.search(page.text).group(1)
        answer, request_id = await send(client, "POST", "/deconnexion", data={"csrf_token": csrf})
        assert answer.status_code == 303
        event = await conftest.the_event(db, request_id)
        assert (event["action"], event["object_type"]) == ("auth.sign_out", "web_session")


async def test_failed_web_sign_in_is_audited_without_the_password(app, db):
    async with fresh_client(app) as client:
        answer = await sign_in_form(client, "cross13.police", "Tr0mpette!")
        assert answer.status_code == 400
        events = await conftest.events_of(db, answer.request.headers["X-Request-ID"])
        assert [(e["action"], e["outcome"]) for e in events] == [("auth.sign_in", "failure")]
        assert "Tr0mpette" not in json.dumps(events, default=str)


async def test_pages_and_refusals_are_audited_under_the_actions_names(web, db):
    user = await web("cross13.police")
    answer, request_id = await send(user.client, "GET", "/")
    assert answer.status_code == 200
    event = await conftest.the_event(db, request_id)
    assert (event["action"], event["outcome"], event["actor_name"]) == (
        "dashboard.read",
        "success",
        "cross13.police",
    )
    answer, request_id = await send(user.client, "POST", "/deconnexion", data={})
    assert answer.status_code == 403
    event = await conftest.the_event(db, request_id)
    assert (event["action"], event["outcome"], event["status"]) == ("auth.sign_out", "denied", 403)


def web_pages(app) -> list[tuple[str, str, str]]:
    """(method, path template, name) of every web page behind the session."""
    return [
        (method, r.path, r.name)
        for r in web_page_routes(app)
        for method in sorted(r.methods - {"HEAD"})
    ]


async def test_every_page_leaves_its_event(app, web, db):
    """By construction, as for the API: each page read leaves one event under its
    route's name, and each page naming an object that is not there (or not visible)
    leaves a denial naming that object. (The event stream is tested on its own, forms
    with their pages.)"""
    user = await web("cross13.chef")
    checked = set()
    for method, template, name in web_pages(app):
        if method != "GET" or name == "notification.stream":
            continue
        params = {p: str(uuid.uuid4()) for p in re.findall(r"{([^}]+)}", template)}
        path = re.sub(r"{([^}]+)}", lambda m, params=params: params[m[1]], template)
        answer, request_id = await send(user.client, method, path)
        event = await conftest.the_event(db, request_id, name)
        where = f"{method} {template}"
        assert event["actor_name"] == "cross13.chef", where
        if params:
            assert answer.status_code == 404, where
            assert (event["outcome"], event["status"]) == ("denied", 404), where
            object_type = name.split(".")[0]
            if f"{object_type}_id" in params:
                assert event["object_id"] == params[f"{object_type}_id"], where
        else:
            assert answer.status_code == 200, where
            assert event["outcome"] == "success", where
        checked.add(name)
    assert {"dashboard.read", "record.form", "record.read", "case.read", "unit.tree"} <= checked
