"""`crossintel`: serve, migrate, load demo data, manage users, memberships and clients.

Every command has --help; a failure prints one line on stderr and exits non-zero.
"""

import asyncio
import dataclasses
import functools
import getpass
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from app import jobs
from app.auth.principal import SYSTEM
from app.db import Database, database_url, head_revision, migrate_async, stop_embedded
from app.errors import Problem
from app.models.units import AGENCIES
from app.models.users import UNIT_ROLES
from app.services import audit
from app.services import clients as clients_service
from app.services import demo as demo_service
from app.services import units as units_service
from app.services import users as users_service
from app.settings import Settings

T = TypeVar("T")


class CliError(click.ClickException):
    def format_message(self) -> str:
        return self.message


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = f"CROSSINTEL_{str(first['loc'][0]).upper()}"
        raise CliError(f"invalid setting {name}: {first['msg']}") from None


def _fail_cleanly(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn domain and database failures into one clear line and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except Problem as exc:
            raise CliError(exc.detail or exc.title) from None
        except (SQLAlchemyError, OSError) as exc:
            first_line = (str(exc).splitlines() or [""])[0]
            raise CliError(f"database error: {type(exc).__name__}: {first_line}") from None
        except ValueError as exc:
            raise CliError(str(exc)) from None

    return wrapper


def _in_transaction(
    work: Callable[[AsyncSession, Settings], Awaitable[T]], action: str | None = None
) -> T:
    """Run `work` in one committed transaction on the configured database; `action` names
    its audit event (the operator at the command line is the actor)."""
    settings = _settings()

    async def main() -> T:
        db = Database(database_url(settings), pool_size=1)
        try:
            async with db.sessionmaker() as session, session.begin():
                if action:
                    audit.begin(session, _cli_trail(settings, action))
                result = await work(session, settings)
                await audit.finish(session, SYSTEM)
                return result
        finally:
            await db.dispose()

    return asyncio.run(main())


def _cli_trail(settings: Settings, action: str) -> audit.Trail:
    """The audit trail of a command: the operating-system account at the command line."""
    try:
        operator = getpass.getuser()
    except OSError:
        operator = "unknown"
    return audit.Trail.for_settings(
        settings,
        action=action,
        actor=audit.Actor("system", name=f"cli:{operator}"[:120]),
        object_type=action.split(".")[0],
        user_agent="crossintel-cli",
    )


async def _check_schema(url: str) -> None:
    db = Database(url, pool_size=1)
    try:
        current = await db.current_revision()
    finally:
        await db.dispose()
    if current != head_revision():
        raise CliError(
            f"the database schema is at {current}, not at head: run `crossintel migrate`"
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """crossintel: shared drug-trafficking intelligence of the CROSS units and OFAST.

    Settings come from CROSSINTEL_* environment variables; with no CROSSINTEL_DATABASE_URL
    an embedded PostgreSQL runs with its data under CROSSINTEL_DATA_DIR (default ./var).
    """


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--down", is_flag=True, help="Downgrade to --revision instead of upgrading.")
@_fail_cleanly
def migrate(revision: str, down: bool) -> None:
    """Bring the database schema to a revision (default: head)."""
    settings = _settings()
    url = database_url(settings)
    click.echo(f"migrating the database {'down' if down else 'up'} to {revision}…", err=True)
    asyncio.run(migrate_async(url, revision, down=down))
    click.echo("schema is up to date" if not down else f"schema is at {revision}", err=True)


def _print_summary(added: dict[str, int]) -> None:
    click.echo("demo data: " + ", ".join(f"{n} {k} added" for k, n in added.items()), err=True)


@main.command()
@_fail_cleanly
def demo() -> None:
    """Load the demo units, personas and service client (idempotent; refused in production)."""
    if _settings().is_production:
        raise CliError("demo data is never loaded in production (CROSSINTEL_ENV=production)")

    async def work(session: AsyncSession, settings: Settings) -> dict[str, int]:
        await _check_schema(database_url(settings))
        return await demo_service.load_demo(session, settings)

    _print_summary(_in_transaction(work, "demo.load"))


def _print_demo_signins(settings: Settings) -> None:
    click.echo("Demo sign-ins (password from CROSSINTEL_DEMO_PASSWORD, default crossintel-demo):")
    for username, _, agency, roles, membership in demo_service.PERSONAS:
        where = f"{membership[1]}, {membership[0]}" if membership else ", ".join(roles)
        click.echo(f"  {username:<18} {where} ({agency})")
    client_id, _, unit, agency, scopes, marking = demo_service.DEMO_CLIENT
    click.echo(
        f"  service client {client_id} ({unit}, {agency}, {' '.join(scopes)}, max {marking}); "
        "secret from CROSSINTEL_DEMO_CLIENT_SECRET"
    )


@main.command()
@click.option("--host", default=None, help="Listen address (CROSSINTEL_HOST, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Listen port (CROSSINTEL_PORT, 8000).")
@click.option(
    "--migrate/--no-migrate", "do_migrate", default=False, help="Migrate to head before serving."
)
@click.option(
    "--demo/--no-demo",
    "do_demo",
    default=False,
    help="Load the demo data before serving (refused in production).",
)
@_fail_cleanly
def serve(host: str | None, port: int | None, do_migrate: bool, do_demo: bool) -> None:
    """Serve the API (and the embedded PostgreSQL when no database URL is set)."""
    import uvicorn

    from app.logs import configure_logging
    from app.main import create_app

    settings = _settings()
    settings.check_startup()
    if do_demo and settings.is_production:
        raise CliError("demo data is never loaded in production (CROSSINTEL_ENV=production)")
    host = host or settings.host
    port = port or settings.port
    url = database_url(settings)
    try:
        if do_migrate:
            click.echo("migrating the database to head…", err=True)
            asyncio.run(migrate_async(url))
        asyncio.run(_check_schema(url))
        if do_demo:
            _print_summary(_in_transaction(demo_service.load_demo, "demo.load"))
        configure_logging(settings.log_level)
        app = create_app(settings)
        click.echo(
            f"\ncrossintel is serving on http://{host}:{port}/ (web client; API docs: /docs)"
        )
        if do_demo:
            _print_demo_signins(settings)
        click.echo("Press Ctrl-C to stop.\n")
        sys.stdout.flush()
        # uvicorn re-raises the signal that stopped it; make SIGTERM unwind like Ctrl-C so
        # that the embedded PostgreSQL is stopped below.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    except KeyboardInterrupt:
        pass
    finally:
        stop_embedded()
        click.echo("crossintel stopped", err=True)


@main.group()
def user() -> None:
    """Manage user accounts."""


@user.command("add")
@click.argument("username")
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--agency", type=click.Choice(AGENCIES), required=True)
@click.option("--email", default=None)
@click.option(
    "--platform-role",
    "platform_roles",
    multiple=True,
    type=click.Choice(["admin", "auditor"]),
    help="Platform role (repeatable).",
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@_fail_cleanly
def user_add(
    username: str,
    display_name: str,
    agency: str,
    email: str | None,
    platform_roles: tuple[str, ...],
    password_stdin: bool,
) -> None:
    """Create a user account (the password is asked for, never taken as an argument)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise CliError("the two passwords differ")
    if len(password) < 12:
        raise CliError("the password must have at least 12 characters")

    async def work(session: AsyncSession, settings: Settings) -> None:
        await users_service.add_user(
            session,
            SYSTEM,
            username=username,
            display_name=display_name,
            agency=agency,
            password=password,
            email=email,
            platform_roles=list(platform_roles),
        )

    _in_transaction(work, "user.create")
    click.echo(f"user {username} created")


def _set_user_active(username: str, active: bool) -> None:
    async def work(session: AsyncSession, settings: Settings) -> None:
        user = await users_service.user_by_username(session, SYSTEM, username)
        await users_service.set_active(session, SYSTEM, user, active)

    _in_transaction(work, "user.enable" if active else "user.disable")


@user.command("disable")
@click.argument("username")
@_fail_cleanly
def user_disable(username: str) -> None:
    """Disable an account: refused from its very next request."""
    _set_user_active(username, False)
    click.echo(f"user {username} disabled")


@user.command("enable")
@click.argument("username")
@_fail_cleanly
def user_enable(username: str) -> None:
    """Enable an account again (also clears a lockout)."""
    _set_user_active(username, True)
    click.echo(f"user {username} enabled")


@user.command("list")
@_fail_cleanly
def user_list() -> None:
    """List accounts with their agency, memberships and state."""

    async def work(session: AsyncSession, settings: Settings) -> list[str]:
        lines = []
        for u in await users_service.list_users(session, SYSTEM):
            ms = await users_service.user_memberships(session, u.id)
            where = ", ".join(f"{unit.code}:{m.role}" for m, unit in ms) or "-"
            roles = ",".join(u.platform_roles) or "-"
            state = "active" if u.is_active else "disabled"
            lines.append(f"{u.username:<20} {u.agency:<12} {roles:<14} {state:<9} {where}")
        return lines

    for line in _in_transaction(work, "user.list"):
        click.echo(line)


@main.group()
def membership() -> None:
    """Manage unit memberships."""


@membership.command("add")
@click.argument("username")
@click.argument("unit_code")
@click.argument("role", type=click.Choice(UNIT_ROLES))
@_fail_cleanly
def membership_add(username: str, unit_code: str, role: str) -> None:
    """Make USERNAME a member of UNIT_CODE with ROLE (or change the role held there)."""

    async def work(session: AsyncSession, settings: Settings) -> None:
        user = await users_service.user_by_username(session, SYSTEM, username)
        unit = await units_service.unit_by_code(session, unit_code)
        await users_service.add_membership(session, SYSTEM, user, unit.id, role)

    _in_transaction(work, "user.membership.put")
    click.echo(f"{username} is {role} in {unit_code}")


@membership.command("remove")
@click.argument("username")
@click.argument("unit_code")
@_fail_cleanly
def membership_remove(username: str, unit_code: str) -> None:
    """Remove USERNAME from UNIT_CODE: effective on the very next request."""

    async def work(session: AsyncSession, settings: Settings) -> None:
        user = await users_service.user_by_username(session, SYSTEM, username)
        unit = await units_service.unit_by_code(session, unit_code)
        await users_service.remove_membership(session, SYSTEM, user, unit.id)

    _in_transaction(work, "user.membership.remove")
    click.echo(f"{username} removed from {unit_code}")


@main.group()
def client() -> None:
    """Manage service clients (agency systems)."""


@client.command("add")
@click.argument("client_id")
@click.option("--name", required=True, help="Human-readable name of the system.")
@click.option("--unit", "unit_code", required=True, help="Unit code the client acts for.")
@click.option("--agency", type=click.Choice(AGENCIES), required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(clients_service.CLIENT_SCOPES),
    help="Scope (repeatable).",
)
@click.option("--max-marking", type=click.Choice(["NP", "DR"]), default="NP", show_default=True)
@_fail_cleanly
def client_add(
    client_id: str,
    name: str,
    unit_code: str,
    agency: str,
    scopes: tuple[str, ...],
    max_marking: str,
) -> None:
    """Create a service client; its secret is printed once and stored hashed."""

    async def work(session: AsyncSession, settings: Settings) -> str:
        unit = await units_service.unit_by_code(session, unit_code)
        _, secret = await clients_service.add_client(
            session,
            SYSTEM,
            client_id=client_id,
            name=name,
            unit_id=unit.id,
            agency=agency,
            scopes=list(scopes),
            max_marking=max_marking,
        )
        return secret

    secret = _in_transaction(work, "client.create")
    click.echo(f"client {client_id} created; its secret (shown once): {secret}")


@client.command("rotate")
@click.argument("client_id")
@_fail_cleanly
def client_rotate(client_id: str) -> None:
    """Give a client a new secret (printed once); the old one stops working at once."""

    async def work(session: AsyncSession, settings: Settings) -> str:
        c = await clients_service.get_client(session, SYSTEM, client_id=client_id)
        return await clients_service.rotate_secret(session, SYSTEM, c)

    secret = _in_transaction(work, "client.rotate")
    click.echo(f"client {client_id}: new secret (shown once): {secret}")


@client.command("disable")
@click.argument("client_id")
@_fail_cleanly
def client_disable(client_id: str) -> None:
    """Disable a client: its tokens are refused from the very next request."""

    async def work(session: AsyncSession, settings: Settings) -> None:
        c = await clients_service.get_client(session, SYSTEM, client_id=client_id)
        await clients_service.set_active(session, SYSTEM, c, False)

    _in_transaction(work, "client.disable")
    click.echo(f"client {client_id} disabled")


# The operator at the command line reading the audit trail: an auditor, holding no unit.
AUDITOR = dataclasses.replace(SYSTEM, platform_roles=frozenset({"auditor"}))


def _progress(label: str) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        click.echo(f"\r{label}: {done}/{total}", err=True, nl=done >= total)

    return show


@main.group("audit")
def audit_group() -> None:
    """Verify, export and examine the audit trail."""


@audit_group.command("verify")
@_fail_cleanly
def audit_verify() -> None:
    """Walk every chain of the audit trail; exit 1 naming the first event altered,
    removed or inserted out of order. Prints an anchor (a digest of the chains' heads) to
    keep outside the database."""

    async def check(session: AsyncSession, settings: Settings) -> tuple[int, object, str]:
        key = settings.audit_key.get_secret_value().encode()
        checked, breach = await audit.verify(session, key, _progress("events checked"))
        return checked, breach, await audit.anchor(session)

    checked, breach, anchor = _in_transaction(check)

    async def record(session: AsyncSession, settings: Settings) -> None:
        audit.note(session, checked=checked, intact=breach is None, anchor=anchor)

    # Recorded apart: the check's snapshot must not write to the chains it judged.
    _in_transaction(record, "audit.verify")
    if breach is not None:
        raise CliError(f"audit trail broken at {breach}")
    click.echo(f"audit trail intact: {checked} events verified; anchor {anchor}")


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option}: not an ISO 8601 date or time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@audit_group.command("export")
@click.option("--since", help="ISO 8601 date or time (UTC unless it says otherwise).")
@click.option("--until", help="ISO 8601 date or time, excluded.")
@_fail_cleanly
def audit_export(since: str | None, until: str | None) -> None:
    """Write the events of a period as JSON lines on standard output (for a SIEM), each
    with its chain position and seals; progress on standard error."""
    start, end = _instant(since, "--since"), _instant(until, "--until")

    async def work(session: AsyncSession, settings: Settings) -> int:
        count = 0
        async for event in audit.export(session, start, end):
            click.echo(json.dumps(event, ensure_ascii=False))
            count += 1
            if count % 10_000 == 0:
                click.echo(f"\r{count} events exported", err=True, nl=False)
        audit.note(session, since=start, until=end, results=count)
        return count

    count = _in_transaction(work, "audit.export")
    click.echo(f"\r{count} events exported", err=True)


@audit_group.command("anomalies")
@click.option("--from", "since", help="ISO 8601 date or time (default: 7 days ago).")
@click.option("--to", "until", help="ISO 8601 date or time (default: now).")
@_fail_cleanly
def audit_anomalies(since: str | None, until: str | None) -> None:
    """Report what deserves an auditor's look: reads far above the unit's median, work
    outside 06:00–22:00, bursts of denials, selector searches without a case."""
    end = _instant(until, "--to") or datetime.now(UTC)
    start = _instant(since, "--from") or end - timedelta(days=7)

    async def work(session: AsyncSession, settings: Settings) -> list:
        return await audit.anomalies(session, AUDITOR, settings, start, end)

    found = _in_transaction(work, "audit.anomalies")
    click.echo(f"anomalies from {start.isoformat()} to {end.isoformat()}: {len(found)}")
    for a in found:
        click.echo(f"  {a.kind:<22} {a.actor_name or '-':<20} {a.detail}")


@main.group()
def retention() -> None:
    """Purge records past their retention period or decided `purge`."""


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@_fail_cleanly
def retention_run(dry_run: bool) -> None:
    """Purge due records (content, entities, selectors, files; a tombstone and the audit
    trail stay). Idempotent and safe to interrupt."""
    settings = _settings()

    async def main() -> jobs.RetentionResult:
        db = Database(database_url(settings), pool_size=1)
        try:
            return await jobs.run_retention(
                db, settings, dry_run=dry_run, progress=_progress("records purged")
            )
        finally:
            await db.dispose()

    result = asyncio.run(main())
    if dry_run:
        click.echo(f"{result.due} records due for purging (dry run: nothing changed)")
    else:
        click.echo(
            f"{result.purged} records purged, {result.files_removed} files removed, "
            f"{result.tokens_pruned} expired tokens and web sessions forgotten"
        )


if __name__ == "__main__":
    main()
