"""Bulk loader: N generated records (default 1,000,000) into a database migrated to head
with the demo data loaded.

    python -m bench.load --database-url postgresql+asyncpg://postgres@127.0.0.1/db --records N

Records are spread over the CROSS units of `bench.generate.UNIT_WEIGHTS` and authored by
their active officers and supervisors (and by service clients allowed to write, within
their maximum marking). A unit with no such member gets bench authors of its own
(`bench.cross06.police`, …), created through the app's user service.

How: each batch is generated (in a thread) while the server moves the previous one; it
is COPYed into unlogged staging tables, then `INSERT … SELECT` moves it into `records`
(computing `search` in SQL exactly as the app does: `setweight(to_tsvector('french',
fold(title)), 'A') || to_tsvector('french', fold(narrative, entity names, commune, tags))`,
with `fold` the app's own), `record_selectors` and `record_versions` (version 1, with the
snapshot the app would write). Secondary indexes are dropped for the load and rebuilt
from their own definitions afterwards; then VACUUM ANALYZE.
"""

import argparse
import asyncio
import json
import os
import random
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.auth.principal import SYSTEM
from app.db import Database
from app.models import Membership, Unit
from app.schemas.records import RecordCreate
from app.services import users as users_service
from app.services.entities import entity_names, selectors
from app.services.records import fold
from bench.generate import UNIT_WEIGHTS, Filing, Generator

BENCH_AGENCIES = ("police", "gendarmerie", "douane")
STAGE = "bench_stage"
STAGE_SELECTORS = "bench_stage_selectors"
RECORD_COLUMNS = (
    "id", "unit_id", "author_user_id", "author_client_id", "author_agency", "title", "narrative",
    "occurred_at", "commune", "departement", "lat", "lon", "drug_types", "source_reliability",
    "information_assessment", "handling_code", "handling_note", "marking", "scope", "tags",
    "entities",
)
STAGE_COLUMNS = (*RECORD_COLUMNS, "changed_by", "title_folded", "rest_folded", "created_at")
SEARCH = ("setweight(to_tsvector('french', title_folded), 'A') "
          "|| to_tsvector('french', rest_folded)")
SNAPSHOT = """jsonb_build_object(
    'title', title, 'narrative', narrative, 'occurred_at', occurred_at,
    'location', jsonb_build_object('commune', commune, 'departement', departement,
                                   'lat', lat, 'lon', lon),
    'drug_types', to_jsonb(drug_types), 'source_reliability', source_reliability,
    'information_assessment', information_assessment, 'handling_code', handling_code,
    'handling_note', handling_note, 'marking', marking, 'scope', scope,
    'tags', to_jsonb(tags), 'entities', entities)"""


@dataclass(frozen=True)
class Author:
    """Who files a bench record: a user (max marking DR) or a service client of the unit."""

    unit_id: uuid.UUID
    user_id: uuid.UUID | None
    client_id: uuid.UUID | None
    agency: str
    name: str
    max_marking: str


def asyncpg_dsn(url: str) -> str:
    """A SQLAlchemy URL (postgresql+asyncpg://…) as a plain libpq DSN for asyncpg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_authors(url: str) -> list[str]:
    """Give every bench unit without an officer or supervisor one bench officer per agency;
    returns the usernames created."""
    db = Database(url, pool_size=1)
    created = []
    try:
        async with db.sessionmaker() as session, session.begin():
            for code in UNIT_WEIGHTS:
                unit_id = await session.scalar(select(Unit.id).where(Unit.code == code))
                staffed = await session.scalar(select(Membership.id).where(
                    Membership.unit_id == unit_id, Membership.role.in_(("officer", "supervisor"))
                ).limit(1))
                if staffed is not None:
                    continue
                for agency in BENCH_AGENCIES:
                    username = f"bench.{code.lower().replace('-', '')}.{agency}"
                    user = await users_service.add_user(
                        session, SYSTEM, username=username, agency=agency,
                        display_name=f"Officier {agency} {code} (banc d'essai)",
                        password=secrets.token_urlsafe(24),
                    )
                    await users_service.add_membership(session, SYSTEM, user, unit_id, "officer")
                    created.append(username)
    finally:
        await db.dispose()
    return created


async def authors_by_unit(conn: asyncpg.Connection) -> dict[str, list[Author]]:
    """The possible authors of each bench unit, in a stable order."""
    rows = await conn.fetch(
        """
        select u.code, u.id as unit_id, us.id as user_id, null::uuid as client_id, us.agency,
               us.username as name, 'DR' as max_marking
          from memberships m join units u on u.id = m.unit_id join users us on us.id = m.user_id
         where u.code = any($1) and m.role in ('officer', 'supervisor') and us.is_active
        union all
        select u.code, u.id, null, c.id, c.agency, c.client_id, c.max_marking
          from service_clients c join units u on u.id = c.unit_id
         where u.code = any($1) and 'records:write' = any(c.scopes) and c.is_active
         order by 1, 6
        """,
        list(UNIT_WEIGHTS),
    )
    out: dict[str, list[Author]] = {}
    for row in rows:
        out.setdefault(row["code"], []).append(Author(*list(row.values())[1:]))
    missing = set(UNIT_WEIGHTS) - set(out)
    if missing:
        raise SystemExit(f"no author in {sorted(missing)}: is the demo data loaded?")
    return out


def _fold_char(char: str) -> str:
    """What the app's `fold` makes of one character between two letters (where its
    separator and strip rules do not apply)."""
    return fold(f"x{char}x")[1:-1]


_FOLD_ASCII = {code: _fold_char(chr(code)) for code in range(128)}
_FOLD_OTHERS: dict[str, str] = {}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_SPACES = re.compile(" +")


def _fold_match(match: re.Match[str]) -> str:
    char = match.group()
    if char not in _FOLD_OTHERS:
        _FOLD_OTHERS[char] = _fold_char(char)
    return _FOLD_OTHERS[char]


def fast_fold(text: str) -> str:
    """The app's `fold`, applied character by character from tables built with `fold`
    itself (every separator folds to a space), then runs of spaces made one and the ends
    stripped: the same result, about three times faster in bulk. `check_against_app`
    compares the two on a sample before every load."""
    folded = _NON_ASCII.sub(_fold_match, text).translate(_FOLD_ASCII)
    return _SPACES.sub(" ", folded).strip()


def check_against_app(filings: list[Filing]) -> None:
    """Fail unless the app, given these bodies, would store the same entities, derive the
    same selectors and names, and fold the same text as the loader does."""
    for f in filings:
        for text in (f.body["title"], f.body["narrative"], *f.names):
            if fast_fold(text) != fold(text):
                raise SystemExit(f"fast_fold differs from the app's fold on {text!r}")
        body = RecordCreate.model_validate(f.body)
        payload = [e.model_dump(mode="json", exclude_none=True) for e in body.entities]
        found = sorted({s for e in body.entities for s in selectors(e)})
        names = [n for e in body.entities for n in entity_names(e)]
        if (payload, found, names) != (f.body["entities"], f.selectors, f.names):
            raise SystemExit(
                "the generator no longer matches app.services.entities:\n"
                f"  generated: {f.body['entities']} {f.selectors} {f.names}\n"
                f"  app:       {payload} {found} {names}"
            )


def stage_rows(
    filings: list[Filing], authors: dict[str, list[Author]], rng: random.Random
) -> tuple[list[tuple], list[tuple]]:
    """Staging rows for records and selectors, with the texts the app folds for `search`."""
    records, found = [], []
    for f in filings:
        b, author = f.body, rng.choice(authors[f.unit_code])
        loc, record_id = b["location"], uuid.uuid4()
        marking = b["marking"] if author.max_marking == "DR" else "NP"
        rest = " ".join([b["narrative"], *f.names, loc["commune"], *b["tags"]])
        records.append((
            record_id, author.unit_id, author.user_id, author.client_id, author.agency,
            b["title"], b["narrative"], datetime.fromisoformat(b["occurred_at"]),
            loc["commune"], loc["departement"], loc["lat"], loc["lon"], b["drug_types"],
            b["source_reliability"], b["information_assessment"], b["handling_code"],
            b.get("handling_note"), marking, b["scope"], b["tags"],
            json.dumps(b["entities"], ensure_ascii=False), author.name, fast_fold(b["title"]),
            fast_fold(rest), f.created_at,
        ))
        found.extend((record_id, t, v) for t, v in f.selectors)
    return records, found


async def create_stage(conn: asyncpg.Connection) -> None:
    """The unlogged staging tables, loosely typed: the INSERT … SELECT casts."""
    await conn.execute(f"""
        drop table if exists {STAGE}, {STAGE_SELECTORS};
        create unlogged table {STAGE} (
            id uuid, unit_id uuid, author_user_id uuid, author_client_id uuid,
            author_agency text, title text, narrative text, occurred_at timestamptz,
            commune text, departement text, lat float8, lon float8, drug_types text[],
            source_reliability text, information_assessment smallint, handling_code text,
            handling_note text, marking text, scope text, tags text[], entities jsonb,
            changed_by text, title_folded text, rest_folded text, created_at timestamptz);
        create unlogged table {STAGE_SELECTORS} (record_id uuid, type text, value text);
    """)


async def move_batch(conn: asyncpg.Connection, versions: bool) -> None:
    """Staging tables -> records, record_selectors (and record_versions); empties them."""
    columns = ", ".join(RECORD_COLUMNS)
    async with conn.transaction():
        await conn.execute(f"""
            insert into records ({columns}, search, version, created_at, updated_at,
                                 review_at, retain_until)
            select {columns}, {SEARCH}, 1, created_at, created_at,
                   created_at + interval '1095 days', created_at + interval '1825 days'
              from {STAGE} order by created_at""")
        await conn.execute(f"""
            insert into record_selectors (record_id, type, value)
            select record_id, type, value from {STAGE_SELECTORS}""")
        if versions:
            await conn.execute(f"""
                insert into record_versions (id, record_id, version, snapshot, changed_by,
                                             changed_at)
                select gen_random_uuid(), id, 1, {SNAPSHOT}, changed_by, created_at
                  from {STAGE}""")
        await conn.execute(f"truncate {STAGE}, {STAGE_SELECTORS}")


async def drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the indexes of the record tables that back no constraint; returns their
    definitions, to rebuild them as they were."""
    rows = await conn.fetch("""
        select i.indexrelid::regclass::text as name, pg_get_indexdef(i.indexrelid) as ddl
          from pg_index i
         where i.indrelid in ('records'::regclass, 'record_selectors'::regclass,
                              'record_versions'::regclass)
           and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
    """)
    for row in rows:
        await conn.execute(f"drop index {row['name']}")
    return [row["ddl"] for row in rows]


async def rebuild_indexes(dsn: str, ddls: list[str]) -> None:
    """Build the indexes two at a time (two cores), each with generous maintenance memory."""
    gate = asyncio.Semaphore(2)

    async def build(ddl: str) -> None:
        async with gate:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("set maintenance_work_mem = '1GB'")
                await conn.execute(ddl)
            finally:
                await conn.close()

    await asyncio.gather(*(build(ddl) for ddl in ddls))


async def load(url: str, records: int, *, seed: int = 1, batch: int = 10_000,
               versions: bool = True) -> dict[str, float]:
    """Load `records` generated records; returns timings and counts."""
    started = time.perf_counter()
    created = await ensure_authors(url)
    if created:
        print(f"bench authors created: {', '.join(created)}")
    dsn = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("set synchronous_commit = off; set timezone = 'UTC'")
        authors = await authors_by_unit(conn)
        generator, rng = Generator(seed, records), random.Random(seed)
        filings = generator.filings()

        def next_batch(size: int) -> tuple[list[tuple], list[tuple]]:
            return stage_rows([next(filings) for _ in range(size)], authors, rng)

        first = [next(filings) for _ in range(min(records, 500))]
        check_against_app(first)
        await create_stage(conn)
        ddls = await drop_secondary_indexes(conn)
        done, selector_rows, moving = 0, 0, None
        load_started = time.perf_counter()
        try:
            staged = stage_rows(first, authors, rng)
            while True:
                await conn.copy_records_to_table(STAGE, records=staged[0], columns=STAGE_COLUMNS)
                await conn.copy_records_to_table(STAGE_SELECTORS, records=staged[1])
                done += len(staged[0])
                selector_rows += len(staged[1])
                moving = asyncio.create_task(move_batch(conn, versions))
                if done >= records:
                    await moving
                    break
                staged, _ = await asyncio.gather(
                    asyncio.to_thread(next_batch, min(batch, records - done)), moving
                )
                elapsed = time.perf_counter() - load_started
                print(f"  {done:>10,} / {records:,} records  {done / elapsed:>8,.0f} records/s",
                      flush=True)
        finally:
            if moving is not None and not moving.done():
                moving.cancel()
                await asyncio.gather(moving, return_exceptions=True)
            rows_seconds = time.perf_counter() - load_started
            print(f"rebuilding {len(ddls)} indexes…", flush=True)
            index_started = time.perf_counter()
            await rebuild_indexes(dsn, ddls)
            index_seconds = time.perf_counter() - index_started
            await conn.execute(f"drop table if exists {STAGE}, {STAGE_SELECTORS}")
        analyze_started = time.perf_counter()
        await conn.execute("vacuum (analyze) records, record_selectors, record_versions")
        analyze_seconds = time.perf_counter() - analyze_started
    finally:
        await conn.close()
    total = time.perf_counter() - started
    stats = {"records": done, "selectors": selector_rows, "rows_seconds": rows_seconds,
             "index_seconds": index_seconds, "analyze_seconds": analyze_seconds,
             "seconds": total, "records_per_second": done / total}
    print(f"loaded {done:,} records and {selector_rows:,} selectors"
          f"{' with their versions' if versions else ''} in {total:,.0f} s "
          f"(rows {rows_seconds:,.0f} s, indexes {index_seconds:,.0f} s, "
          f"vacuum analyze {analyze_seconds:,.0f} s): {done / total:,.0f} records/s", flush=True)
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("CROSSINTEL_DATABASE_URL"),
                        help="postgresql+asyncpg://… (default: CROSSINTEL_DATABASE_URL)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--no-versions", dest="versions", action="store_false",
                        help="skip the record_versions rows")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or CROSSINTEL_DATABASE_URL) is required")
    asyncio.run(load(args.database_url, args.records, seed=args.seed, batch=args.batch,
                     versions=args.versions))


if __name__ == "__main__":
    main()
