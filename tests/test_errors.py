"""Errors are application/problem+json (RFC 9457) with a stable `code`."""

import logging
import uuid

import httpx

from app.main import create_app

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code"}


def assert_problem(response, status: int, code: str, path: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith("/" + code)
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_401_problem(client):
    response = await client.get("/api/v1/me")
    assert_problem(response, 401, "unauthorized", "/api/v1/me")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_404_unknown_unit(client, auth):
    path = f"/api/v1/units/{uuid.uuid4()}"
    assert_problem(
        await client.get(path, headers=await auth("cross13.police")), 404, "not_found", path
    )


async def test_404_unknown_path(client):
    path = "/api/v1/no-such-thing"
    assert_problem(await client.get(path, params={"q": "x"}), 404, "not_found", path)
    assert_problem(await client.get("/api/nowhere"), 404, "not_found", "/api/nowhere")


async def test_405_wrong_method(client):
    response = await client.delete("/healthz")
    assert_problem(response, 405, "method_not_allowed", "/healthz")


async def test_422_names_the_field(client, auth):
    path = "/api/v1/admin/users"
    response = await client.post(
        path,
        headers=await auth("admin"),
        json={
            "username": "Not Valid!",
            "display_name": "x",
            "agency": "police",
            "password": "a-long-enough-password",
        },
    )
    body = assert_problem(response, 422, "validation_error", path)
    assert [e["loc"] for e in body["errors"]] == [["body", "username"]]
    assert all(isinstance(e["msg"], str) and e["msg"] for e in body["errors"])
    assert "username" in body["detail"]


async def test_422_lists_every_field_and_echoes_no_input(client, auth):
    path = "/api/v1/admin/users"
    secret = "short-pw"
    response = await client.post(
        path,
        headers=await auth("admin"),
        json={"username": "ok.name", "agency": "cia", "password": secret},
    )
    body = assert_problem(response, 422, "validation_error", path)
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert locs == {("body", "display_name"), ("body", "agency"), ("body", "password")}
    assert secret not in response.text


async def test_422_bad_path_parameter(client, auth):
    response = await client.get("/api/v1/units/not-a-uuid", headers=await auth("admin"))
    body = assert_problem(response, 422, "validation_error", "/api/v1/units/not-a-uuid")
    assert [e["loc"] for e in body["errors"]] == [["path", "unit_id"]]


async def test_422_malformed_json(client, auth):
    headers = {**await auth("admin"), "content-type": "application/json"}
    response = await client.post("/api/v1/admin/users", headers=headers, content=b"{not json")
    assert_problem(response, 422, "validation_error", "/api/v1/admin/users")


async def test_500_hides_internals(settings, db, caplog):
    app = create_app(settings, db=db)

    @app.get("/api/boom")
    async def boom() -> dict:
        raise RuntimeError("secret internals")

    @app.get("/page-boom")
    async def page_boom() -> dict:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="crossintel.errors"):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await c.get("/api/boom", headers={"X-Request-ID": "boom-1"})
            page = await c.get("/page-boom", headers={"X-Request-ID": "boom-2"})
    # A page of the web client fails as a page, as silent about internals.
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Erreur interne" in page.text and "boom-2" in page.text
    assert "secret internals" not in page.text and "Traceback" not in page.text
    assert page.headers.get("x-request-id") == "boom-2"
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert PROBLEM_KEYS <= set(body)
    assert body["status"] == 500 and body["code"] == "internal_error"
    assert body["instance"] == "/api/boom"
    assert body["request_id"] == "boom-1"
    assert "secret internals" not in response.text
    assert "RuntimeError" not in response.text
    assert "Traceback" not in response.text
    assert response.headers.get("x-request-id") == "boom-1"
    # The operator, not the caller, gets the details, with the request id to find them.
    logged = [r for r in caplog.records if r.name == "crossintel.errors"]
    assert len(logged) == 2
    assert logged[0].exc_info is not None and "secret internals" in str(logged[0].exc_info[1])
    assert getattr(logged[0], "request_id", None) == "boom-1"
