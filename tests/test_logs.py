"""Log lines never carry a password, secret or token, nor a query string; access lines carry
the request id, method, path and status."""

import json
import logging
import uuid

import pytest
from conftest import DEMO_CLIENT_SECRET

from app.logs import JsonFormatter

# The test's own HTTP client logs the URLs it calls; it is not part of the service.
CLIENT_SIDE = ("httpx", "httpcore")


class _Capture(logging.Handler):
    """Formats every record as it is emitted, as the production handler does (the request
    id is read from the request context at that moment)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in CLIENT_SIDE:
            return
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def captured(caplog):
    handler = _Capture()
    root = logging.getLogger()
    caplog.set_level(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


def access_lines(lines: list[str]) -> list[dict]:
    parsed = [json.loads(line) for line in lines]
    return [p for p in parsed if p["logger"] == "crossintel.access"]


async def test_no_secret_in_any_log_line(client, auth, new_user, captured):
    user, password = await new_user()
    wrong_password = "wrong-" + uuid.uuid4().hex
    secrets: list[str] = [password, wrong_password, DEMO_CLIENT_SECRET]

    response = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user["username"], "password": password},
    )
    assert response.status_code == 200
    tokens = response.json()
    secrets += [tokens["access_token"], tokens["refresh_token"]]

    failed = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "password", "username": user["username"], "password": wrong_password},
    )
    assert failed.status_code == 400

    granted = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "douane-dnred",
            "client_secret": DEMO_CLIENT_SECRET,
        },
    )
    assert granted.status_code == 200
    secrets.append(granted.json()["access_token"])

    rotated = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert rotated.status_code == 200
    secrets += [rotated.json()["access_token"], rotated.json()["refresh_token"]]
    # Reuse of the rotated token is logged as a warning: without the token.
    reused = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert reused.status_code == 400

    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {granted.json()['access_token']}"}
    )
    assert me.status_code == 200
    revoked = await client.post("/api/v1/auth/revoke", data={"token": tokens["access_token"]})
    assert revoked.status_code == 200

    # Lock the account: the lockout warning is logged too.
    for _ in range(5):
        await client.post(
            "/api/v1/auth/token",
            data={
                "grant_type": "password",
                "username": user["username"],
                "password": wrong_password,
            },
        )

    # A secret in a query string stays out of the logs as well.
    query_secret = "selector-" + uuid.uuid4().hex
    secrets.append(query_secret)
    await client.get(
        "/api/v1/units", params={"q": query_secret}, headers=await auth("cross13.police")
    )

    lines = captured.lines
    assert any('"crossintel.auth"' in line for line in lines), "the auth warnings were captured"
    assert len(access_lines(lines)) >= 8
    for secret in secrets:
        leaking = [line for line in lines if secret in line]
        assert leaking == [], f"a secret is logged: {leaking}"
        plain = [
            logging.Formatter("%(name)s %(message)s %(args)s").format(r) for r in captured.records
        ]
        assert not [line for line in plain if secret in line]
    # Nor the Basic/Bearer headers, nor hashes of the refresh tokens.
    assert not [line for line in lines if "Bearer " in line or "Basic " in line]


async def test_access_lines(client, auth, captured):
    headers = {**await auth("cross13.police"), "X-Request-ID": "trace-me-42"}
    await client.get("/api/v1/units", params={"q": "some-selector"}, headers=headers)
    await client.get("/api/v1/no-such-thing")
    lines = access_lines(captured.lines)

    traced = [line for line in lines if line.get("request_id") == "trace-me-42"]
    assert len(traced) == 1
    line = traced[0]
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/units"
    assert line["status"] == 200
    assert isinstance(line["duration_ms"], int | float)
    assert line["level"] == "INFO"
    assert "some-selector" not in json.dumps(line)

    missing = [line for line in lines if line["path"] == "/api/v1/no-such-thing"]
    assert len(missing) == 1
    assert missing[0]["status"] == 404
    assert len(missing[0]["request_id"]) == 32  # generated when none was sent
    assert missing[0]["method"] == "GET"
