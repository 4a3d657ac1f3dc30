"""EXPLAIN (ANALYZE, BUFFERS) of the record queries exactly as the app issues them.

    python -m bench.explain --database-url postgresql+asyncpg://…/crossintel_bench_… \\
        --user ofast.analyste --q cannabis          # or --selector "06 12 34 56 78", --get ID

Loads the user's principal, then runs the app's own service function (`search_records`
or `get_record`) with every statement it sends captured, and explains each one with its
parameters on the same connection. Use it on a database kept by `python -m bench.run
--keep`.
"""

import argparse
import asyncio
import os
import uuid

from sqlalchemy import event, select

from app.auth.principal import load_principal
from app.db import Database
from app.models import User
from app.services import records as records_service


async def explain(url: str, username: str, q: str | None, selector: str | None,
                  record_id: uuid.UUID | None) -> None:
    db = Database(url, pool_size=1)
    captured: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        captured.append((statement, tuple(parameters or ())))

    try:
        async with db.sessionmaker() as session, session.begin():
            user_id = await session.scalar(select(User.id).where(User.username == username))
            if user_id is None:
                raise SystemExit(f"no user {username}")
            principal = await load_principal(session, f"user:{user_id}")
            event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
            if record_id is not None:
                await records_service.get_record(session, principal, record_id)
            else:
                params = records_service.SearchParams(q=q, selector=selector)
                await records_service.search_records(session, principal, params)
            event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
            raw = (await (await session.connection()).get_raw_connection()).driver_connection
            for statement, parameters in captured:
                print(f"\n{statement}\n-- parameters: {parameters}\n")
                for row in await raw.fetch(f"explain (analyze, buffers) {statement}",
                                           *parameters):
                    print(row[0])
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("CROSSINTEL_DATABASE_URL"),
                        help="postgresql+asyncpg://… (default: CROSSINTEL_DATABASE_URL)")
    parser.add_argument("--user", default="cross13.police", help="demo username")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--q", help="full-text search")
    what.add_argument("--selector", help="selector search")
    what.add_argument("--get", type=uuid.UUID, help="get one record by id")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or CROSSINTEL_DATABASE_URL) is required")
    asyncio.run(explain(args.database_url, args.user, args.q, args.selector, args.get))


if __name__ == "__main__":
    main()
