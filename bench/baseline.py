"""The bare baseline: FastAPI + asyncpg, no SQLAlchemy, no policy, no authentication.

It files and finds records of the same shape as the app, on the same tables: the body is
validated by the app's `RecordCreate`, selectors, names and folding come from
`app.services.entities`, `search` is computed in SQL as the app does; but there is no
principal to load, no visibility filter, no version row and no audit. Every record is
filed in one unit by one author given on the command line. What the app costs beyond
this is the price of its safety and structure.

Its connections plan every statement for its parameters (`plan_cache_mode =
force_custom_plan`): asyncpg prepares statements, and after five executions PostgreSQL
may switch to a generic plan that ignores the search term; for `search @@ … order by seq
desc limit 51` that plan walks the records newest first whatever the term, and a rare
term then costs seconds instead of milliseconds.

    python -m bench.baseline --database-url postgresql://… --port 8001 \\
        --unit-id … --author-id … --agency police
"""

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import asyncpg
import uvicorn
from fastapi import FastAPI, HTTPException, Query

from app.schemas.records import RecordCreate
from app.services.entities import entity_names, fold, search_selectors, selectors

SUMMARY = """r.id, r.seq, r.title, r.unit_id, u.code as unit_code, r.author_agency,
    r.occurred_at, r.commune, r.drug_types, r.source_reliability, r.information_assessment,
    r.handling_code, r.marking, r.scope, r.created_at"""
DETAIL = """r.narrative, r.departement, r.lat, r.lon, r.handling_note, r.tags, r.entities,
    r.author_user_id, r.author_client_id, r.version, r.updated_at"""
INSERT = """
insert into records (id, unit_id, author_user_id, author_agency, title, narrative, occurred_at,
    commune, departement, lat, lon, drug_types, source_reliability, information_assessment,
    handling_code, handling_note, marking, scope, tags, entities, search, version, review_at,
    retain_until)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
    $20, setweight(to_tsvector('french', $21), 'A') || to_tsvector('french', $22), 1,
    now() + interval '1095 days', now() + interval '1825 days')
returning seq, created_at"""
INSERT_SELECTORS = """
insert into record_selectors (record_id, type, value)
select $1, t, v from unnest($2::text[], $3::text[]) as s(t, v)"""


def create_baseline(dsn: str, unit_id: uuid.UUID, author_id: uuid.UUID, agency: str) -> FastAPI:
    """The baseline app, filing as `author_id` of `agency` in `unit_id`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=2, max_size=10, init=_json_codec,
            server_settings={"plan_cache_mode": "force_custom_plan"},
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="crossintel bench baseline", lifespan=lifespan)

    @app.post("/records", status_code=201)
    async def file_record(body: RecordCreate) -> dict[str, Any]:
        """Validate, derive selectors and names, insert the record and its selectors."""
        found: set[tuple[str, str]] = set()
        names: list[str] = []
        for entity in body.entities:
            found.update(selectors(entity))
            names.extend(entity_names(entity))
        payload = [e.model_dump(mode="json", exclude_none=True) for e in body.entities]
        rest = " ".join([body.narrative, *names, body.location.commune or "", *body.tags])
        record_id = uuid.uuid4()
        loc = body.location
        async with app.state.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                INSERT, record_id, unit_id, author_id, agency, body.title, body.narrative,
                body.occurred_at, loc.commune, loc.departement, loc.lat, loc.lon,
                sorted(set(body.drug_types)), body.source_reliability,
                body.information_assessment, body.handling_code, body.handling_note,
                body.marking, body.scope, sorted(set(body.tags)), payload, fold(body.title),
                fold(rest),
            )
            if found:
                types, values = zip(*sorted(found), strict=True)
                await conn.execute(INSERT_SELECTORS, record_id, list(types), list(values))
        return {"id": record_id, "seq": row["seq"], "created_at": row["created_at"],
                **body.model_dump(mode="json", exclude={"unit_id"})}

    @app.get("/records")
    async def search_records(
        q: Annotated[str | None, Query(max_length=500)] = None,
        selector: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
    ) -> dict[str, Any]:
        """Newest first: French full text (`q`) and/or an identifier (`selector`)."""
        where, args = [], []
        if q:
            args.append(fold(q))
            where.append(f"r.search @@ websearch_to_tsquery('french', ${len(args)})")
        if selector:
            pairs = []
            for type_, value in search_selectors(selector):
                args += [type_, value]
                pairs.append(f"(${len(args) - 1}, ${len(args)})")
            if not pairs:
                raise HTTPException(422, "not a recognised identifier")
            where.append("r.id in (select record_id from record_selectors "
                         f"where (type, value) in ({', '.join(pairs)}))")
        sql = (f"select {SUMMARY} from records r join units u on u.id = r.unit_id "
               f"where {' and '.join(where) or 'true'} order by r.seq desc limit {limit + 1}")
        async with app.state.pool.acquire() as conn:
            rows = await conn.fetch(sql, *args)
        next_cursor = rows[limit - 1]["seq"] if len(rows) > limit else None
        return {"items": [dict(row) for row in rows[:limit]], "next_cursor": next_cursor}

    @app.get("/records/{record_id}")
    async def get_record(record_id: uuid.UUID) -> dict[str, Any]:
        """One record, whoever asks."""
        async with app.state.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"select {SUMMARY}, {DETAIL} from records r join units u on u.id = r.unit_id "
                "where r.id = $1", record_id,
            )
        if row is None:
            raise HTTPException(404, "no such record")
        return dict(row)

    return app


async def _json_codec(conn: asyncpg.Connection) -> None:
    """JSONB in and out as Python values, as SQLAlchemy does for the app."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                              schema="pg_catalog")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="postgresql://… (asyncpg DSN)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--unit-id", type=uuid.UUID, required=True)
    parser.add_argument("--author-id", type=uuid.UUID, required=True)
    parser.add_argument("--agency", required=True)
    args = parser.parse_args()
    app = create_baseline(args.database_url, args.unit_id, args.author_id, args.agency)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
