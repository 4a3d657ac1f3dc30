"""The `crossintel` command, run as a subprocess against the test database."""

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path

import click
import pytest
from conftest import ROOT, run_cli, sign_in

from app.cli import main as cli_main
from app.main import create_app
from app.services.demo import PERSONAS, unit_tree
from app.settings import DEFAULT_SIGNING_KEY, Settings

PROPER_KEY = "a-production-signing-key-of-enough-length-0123456789"
PROPER_AUDIT_KEY = "a-production-audit-key-of-enough-length-0123456789"
TIMEOUT = 180  # a safety net against a hung command, not a measurement


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def __repr__(self) -> str:
        return f"<exit {self.code}; stdout={self.out!r}; stderr={self.err!r}>"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli-data")


@pytest.fixture
def cli(database_url: str, data_dir: Path):
    """cli(*args, stdin=..., env=..., url=...) -> Result of `python -m app.cli ARGS`, on the
    checkout under test; `env` values of None remove the variable."""

    async def run(
        *args: str,
        stdin: str | None = None,
        env: dict[str, str | None] | None = None,
        url: str | None = None,
    ) -> Result:
        return Result(
            *await run_cli(
                url or database_url,
                data_dir,
                *args,
                env={"CROSSINTEL_SIGNING_KEY": PROPER_KEY, **(env or {})},
                stdin=stdin,
                wait=TIMEOUT,
            )
        )

    return run


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.code != 0, result
    assert result.out == "", result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], result


def _command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            paths += _command_paths(command, prefix + (name,))
        else:
            paths.append(prefix + (name,))
    return paths


async def test_help_of_every_command(cli):
    paths = _command_paths(cli_main)
    assert {
        ("serve",),
        ("migrate",),
        ("demo",),
        ("user", "add"),
        ("user", "list"),
        ("user", "disable"),
        ("membership", "add"),
        ("membership", "remove"),
        ("client", "add"),
        ("client", "rotate"),
        ("client", "disable"),
    } <= set(paths)
    results = await asyncio.gather(*(cli(*path, "--help") for path in paths))
    for path, result in zip(paths, results, strict=True):
        assert result.code == 0, (path, result)
        assert result.out.startswith("Usage:"), (path, result)
        assert result.err == "", (path, result)
    short = await cli("user", "add", "-h")
    assert short.code == 0 and short.out.startswith("Usage:")


async def test_console_script(database_url: str, data_dir: Path):
    """The installed entry point `crossintel` (pyproject's [project.scripts]) runs."""
    script = Path(sys.executable).parent / "crossintel"
    assert script.exists(), "the package is not installed: pip install -e ."
    proc = await asyncio.create_subprocess_exec(
        str(script),
        "--help",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "CROSSINTEL_DATABASE_URL": database_url,
            "CROSSINTEL_DATA_DIR": str(data_dir),
        },
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith("Usage: crossintel")


async def test_user_add_list_membership_disable(cli, client):
    username = f"cli.{uuid.uuid4().hex[:10]}"
    password = "a-password-read-from-stdin"
    added = await cli(
        "user",
        "add",
        username,
        "--name",
        "Officier CLI",
        "--agency",
        "douane",
        "--password-stdin",
        stdin=password + "\n",
    )
    assert added.code == 0, added
    assert password not in added.out + added.err

    tokens = await sign_in(client, username, password)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["agency"] == "douane" and me["memberships"] == []

    joined = await cli("membership", "add", username, "CROSS-59", "officer")
    assert joined.code == 0, joined
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert [(m["unit_code"], m["role"]) for m in me["memberships"]] == [("CROSS-59", "officer")]

    changed = await cli("membership", "add", username, "CROSS-59", "analyst")
    assert changed.code == 0, changed
    listed = await cli("user", "list")
    assert listed.code == 0, listed
    line = next(x for x in listed.out.splitlines() if x.split()[0] == username)
    assert "douane" in line and "active" in line and "CROSS-59:analyst" in line
    assert "admin" in {x.split()[0] for x in listed.out.splitlines()}

    left = await cli("membership", "remove", username, "CROSS-59")
    assert left.code == 0, left
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["memberships"] == []

    disabled = await cli("user", "disable", username)
    assert disabled.code == 0, disabled
    assert (await client.get("/api/v1/me", headers=headers)).status_code == 401
    listed = await cli("user", "list")
    line = next(x for x in listed.out.splitlines() if x.split()[0] == username)
    assert "disabled" in line


async def test_user_add_with_platform_role(cli, client):
    username = f"cli.{uuid.uuid4().hex[:10]}"
    added = await cli(
        "user",
        "add",
        username,
        "--name",
        "Auditeur CLI",
        "--agency",
        "justice",
        "--platform-role",
        "auditor",
        "--password-stdin",
        stdin="auditor-password-123\n",
    )
    assert added.code == 0, added
    token = (await sign_in(client, username, "auditor-password-123"))["access_token"]
    me = (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["platform_roles"] == ["auditor"]


async def test_client_add_rotate_disable(cli, client):
    client_id = f"cli-{uuid.uuid4().hex[:10]}"
    added = await cli(
        "client",
        "add",
        client_id,
        "--name",
        "Système CLI",
        "--unit",
        "CROSS-13",
        "--agency",
        "gendarmerie",
        "--scope",
        "records:read",
        "--scope",
        "records:write",
        "--max-marking",
        "DR",
    )
    assert added.code == 0, added
    secret = re.search(r"\(shown once\): (\S+)", added.out).group(1)
    assert (added.out + added.err).count(secret) == 1

    async def grant(s: str) -> int:
        response = await client.post(
            "/api/v1/auth/token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": s},
        )
        return response.status_code

    assert await grant(secret) == 200

    rotated = await cli("client", "rotate", client_id)
    assert rotated.code == 0, rotated
    new_secret = re.search(r"\(shown once\): (\S+)", rotated.out).group(1)
    assert new_secret != secret and (rotated.out + rotated.err).count(new_secret) == 1
    assert await grant(secret) == 401
    assert await grant(new_secret) == 200

    disabled = await cli("client", "disable", client_id)
    assert disabled.code == 0, disabled
    assert await grant(new_secret) == 401


async def test_errors_are_one_line(cli):
    nobody = f"nobody.{uuid.uuid4().hex[:8]}"
    assert_one_line_error(await cli("user", "disable", nobody), nobody)
    assert_one_line_error(await cli("membership", "add", nobody, "CROSS-13", "officer"), nobody)

    username = f"cli.{uuid.uuid4().hex[:10]}"
    added = await cli(
        "user",
        "add",
        username,
        "--name",
        "x",
        "--agency",
        "police",
        "--password-stdin",
        stdin="a-long-enough-password\n",
    )
    assert added.code == 0, added
    assert_one_line_error(
        await cli("membership", "add", username, "CROSS-999", "officer"), "CROSS-999"
    )
    assert_one_line_error(await cli("membership", "remove", username, "CROSS-13"))
    assert_one_line_error(
        await cli(
            "client",
            "add",
            f"cli-{uuid.uuid4().hex[:8]}",
            "--name",
            "x",
            "--unit",
            "NOWHERE",
            "--agency",
            "police",
            "--scope",
            "records:read",
        ),
        "NOWHERE",
    )
    assert_one_line_error(await cli("client", "rotate", "no-such-client"))
    assert_one_line_error(
        await cli(
            "user",
            "add",
            username,
            "--name",
            "x",
            "--agency",
            "police",
            "--password-stdin",
            stdin="a-long-enough-password\n",
        ),
        username,
    )
    assert_one_line_error(
        await cli(
            "user",
            "add",
            f"cli.{uuid.uuid4().hex[:8]}",
            "--name",
            "x",
            "--agency",
            "police",
            "--password-stdin",
            stdin="short\n",
        ),
        "12",
    )


async def test_database_unreachable_is_one_line(cli):
    result = await cli("user", "list", url="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere")
    assert_one_line_error(result, "database")


def _added(summary: str) -> dict[str, int]:
    return {kind: int(n) for n, kind in re.findall(r"(\d+) (\w+) added", summary)}


async def test_migrate_then_demo_is_idempotent(cli, scratch_url):
    unmigrated = await cli("demo", url=scratch_url)
    assert_one_line_error(unmigrated, "migrate")

    migrated = await cli("migrate", url=scratch_url)
    assert migrated.code == 0, migrated

    first = await cli("demo", url=scratch_url)
    assert first.code == 0, first
    assert _added(first.err) == {
        "units": len(unit_tree()),
        "users": len(PERSONAS),
        "memberships": sum(1 for p in PERSONAS if p[4] is not None),
        "clients": 1,
    }

    second = await cli("demo", url=scratch_url)
    assert second.code == 0, second
    assert _added(second.err) == {"units": 0, "users": 0, "memberships": 0, "clients": 0}


async def test_production_refuses_the_default_signing_key(cli):
    unset = await cli(
        "serve", "--port", "0", env={"CROSSINTEL_ENV": "production", "CROSSINTEL_SIGNING_KEY": None}
    )
    assert_one_line_error(unset, "CROSSINTEL_SIGNING_KEY")
    explicit = await cli(
        "serve",
        "--port",
        "0",
        env={"CROSSINTEL_ENV": "production", "CROSSINTEL_SIGNING_KEY": DEFAULT_SIGNING_KEY},
    )
    assert_one_line_error(explicit, "CROSSINTEL_SIGNING_KEY")
    short = await cli(
        "serve",
        "--port",
        "0",
        env={"CROSSINTEL_ENV": "production", "CROSSINTEL_SIGNING_KEY": "short"},
    )
    assert_one_line_error(short, "CROSSINTEL_SIGNING_KEY")


async def test_production_refuses_demo_data(cli):
    env = {
        "CROSSINTEL_ENV": "production",
        "CROSSINTEL_SIGNING_KEY": PROPER_KEY,
        "CROSSINTEL_AUDIT_KEY": PROPER_AUDIT_KEY,
    }
    assert_one_line_error(await cli("demo", env=env), "production")
    # Refused before the database is even looked at.
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
    assert_one_line_error(await cli("demo", env=env, url=unreachable), "production")
    assert_one_line_error(
        await cli("serve", "--demo", "--port", "0", env=env), "production", "demo data"
    )


def test_create_app_refuses_production_with_the_default_key(monkeypatch):
    monkeypatch.delenv("CROSSINTEL_SIGNING_KEY", raising=False)
    monkeypatch.delenv("CROSSINTEL_AUDIT_KEY", raising=False)
    with pytest.raises(ValueError, match="CROSSINTEL_SIGNING_KEY"):
        create_app(Settings(env="production"))
    with pytest.raises(ValueError, match="CROSSINTEL_SIGNING_KEY"):
        create_app(Settings(env="production", signing_key="too-short"))
    with pytest.raises(ValueError, match="CROSSINTEL_AUDIT_KEY"):
        create_app(Settings(env="production", signing_key=PROPER_KEY))
    with pytest.raises(ValueError, match="CROSSINTEL_AUDIT_KEY"):
        create_app(Settings(env="production", signing_key=PROPER_KEY, audit_key="too-short"))
    proper = Settings(env="production", signing_key=PROPER_KEY, audit_key=PROPER_AUDIT_KEY)
    assert create_app(proper) is not None
