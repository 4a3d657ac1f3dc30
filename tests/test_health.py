"""Health probes and the caller's identity."""


async def test_healthz_and_readyz(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_request_id_is_echoed_or_generated(client):
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32


async def test_me_for_ofast_chef(client, auth):
    response = await client.get("/api/v1/me", headers=await auth("ofast.chef"))
    assert response.status_code == 200
    me = response.json()
    assert me["name"] == "ofast.chef"
    assert me["agency"] == "police"
    assert [(m["unit_code"], m["role"]) for m in me["memberships"]] == [("OFAST", "supervisor")]
