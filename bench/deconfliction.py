"""`python -m bench.deconfliction` (`make bench-deconfliction`): what deconfliction costs.

Targets (deconfliction issue): hit detection adds ≤ 5 ms p95 to filing with 2,000,000
selectors; an operation conflict check answers with p95 ≤ 10 ms with 100,000 operations.

1. Creates a database `crossintel_bench_<random>` on the server of
   CROSSINTEL_BENCH_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/
   postgres), migrates it, loads the demo data and bulk-loads --records records with the
   records bench's loader (1,000,000 records hold about 2,000,000 selectors), then COPYs
   --operations planned operations (a year of them over France, half around six cities,
   radius 50–1,000 m, 1–12 h long, over the demo CROSS units).
2. Files --samples new records through the app's own service (`create_record`, one
   committed transaction each, as cross13.police): the generator draws their phones,
   plates, IBANs… from the same pools as the loaded records, so most of them are already
   held by other units and the matching finds holders and creates hits. The time of the
   matching step (`deconfliction.match`) is recorded apart from the whole filing.
   With `--database NAME` (e.g. a database the records bench kept), the records are
   reused and the operations loaded when it holds fewer than --operations.
3. Checks --samples new operations (drawn like the loaded ones) for conflicts with the
   app's own query (`operations.conflicts_of`), then plans --samples of them through
   `create_operation` (check, insert, alerts, committed).
4. Prints the table and writes it to bench/results/deconfliction-<UTC timestamp>.md.

In-process: the figures are the database work and the service's Python, without HTTP.
The database is dropped on exit (kept with --keep; `--database NAME` reuses a kept one).
"""

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.auth.principal import USER_SCOPES, load_principal
from app.db import Database, migrate_async
from app.models import Operation
from app.schemas.operations import OperationCreate
from app.schemas.records import RecordCreate
from app.services import deconfliction, operations
from app.services import records as records_service
from app.settings import Settings
from bench.generate import Generator
from bench.load import asyncpg_dsn, load
from bench.run import (
    DEFAULT_SERVER,
    Phase,
    create_database,
    drop_database,
    load_demo_data,
    loadavg,
    machine,
    pg_version,
    write_results,
)

FILER = "cross13.police"
CITIES = [(43.2965, 5.3698), (50.6292, 3.0573), (48.8566, 2.3522), (45.764, 4.8357),
          (43.6047, 1.4442), (43.1242, 5.928)]
KINDS = ("search", "surveillance", "controlled_delivery", "arrest", "undercover")
YEAR_START = datetime(2027, 1, 1, tzinfo=UTC)


def draw_operation(rng: random.Random) -> dict:
    """An operation somewhere in France in 2027: half around a city, half anywhere."""
    if rng.random() < 0.5:
        lat, lon = rng.choice(CITIES)
        lat, lon = lat + rng.gauss(0, 0.05), lon + rng.gauss(0, 0.07)
    else:
        lat, lon = rng.uniform(42.5, 51.0), rng.uniform(-4.5, 8.0)
    starts = YEAR_START + timedelta(minutes=rng.randrange(365 * 24 * 60))
    return {
        "kind": rng.choice(KINDS),
        "starts_at": starts,
        "ends_at": starts + timedelta(hours=rng.uniform(1, 12)),
        "lat": lat,
        "lon": lon,
        "radius_m": rng.randrange(50, 1000),
    }


async def load_operations(url: str, count: int, seed: int) -> float:
    """COPY `count` planned operations over the CROSS units; returns the seconds taken."""
    started = time.perf_counter()
    rng = random.Random(seed)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        units = await conn.fetch("select id from units where kind = 'cross'")
        author = await conn.fetchrow("select id, username from users where username = $1", FILER)
        rows = []
        for _ in range(count):
            op = draw_operation(rng)
            rows.append((uuid.uuid4(), rng.choice(units)["id"], author["id"], author["username"],
                         op["kind"], op["starts_at"], op["ends_at"], op["lat"], op["lon"],
                         op["radius_m"], "planned", 1))
        await conn.copy_records_to_table(
            "operations", records=rows,
            columns=("id", "unit_id", "created_by_id", "created_by", "kind", "starts_at",
                     "ends_at", "lat", "lon", "radius_m", "status", "version"))
        await conn.execute("vacuum (analyze) operations")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def principal_of(db: Database, username: str):
    """The persona as the app would rebuild it from a token."""
    async with db.sessionmaker() as session:
        user_id = await session.scalar(text("select id from users where username = :u"),
                                       {"u": username})
        return await load_principal(session, f"user:{user_id}", "bench",
                                    frozenset(USER_SCOPES), datetime.now(UTC))


async def measure_filing(db: Database, settings: Settings, records: int, samples: int,
                         seed: int) -> tuple[Phase, Phase, Phase, Phase, int]:
    """Files `samples` records; returns the whole filing's and the matching's latencies,
    and how many hits were created."""
    principal = await principal_of(db, FILER)
    matching = Phase("deconfliction.match")
    quiet, hitting = Phase("match, no new hit"), Phase("match, new hits")
    filing = Phase("create_record, whole")
    original = deconfliction.match
    created = 0

    async def timed_match(*args, **kwargs):
        nonlocal created
        started = time.perf_counter()
        hits = await original(*args, **kwargs)
        elapsed = time.perf_counter() - started
        matching.latencies.append(elapsed)
        (hitting if hits else quiet).latencies.append(elapsed)
        created += len(hits)
        return hits

    records_service.deconfliction.match = timed_match
    try:
        # The loaded records' pools (same seed and size), new draws from them.
        generator = Generator(seed, records)
        generator.rng.seed(seed + 7)
        bodies = [RecordCreate.model_validate(f.body) for f in generator.filings(samples)]
        started_all = time.perf_counter()
        for body in bodies:
            body.unit_id = None
            started = time.perf_counter()
            async with db.sessionmaker() as session, session.begin():
                await records_service.create_record(session, principal, body, settings)
            filing.latencies.append(time.perf_counter() - started)
        filing.seconds = matching.seconds = time.perf_counter() - started_all
    finally:
        records_service.deconfliction.match = original
    return filing, matching, quiet, hitting, created


async def measure_operations(db: Database, samples: int, seed: int) -> tuple[Phase, Phase, int]:
    """Checks and then plans `samples` operations; returns both latencies and the number
    of conflicts the checks found."""
    principal = await principal_of(db, FILER)
    rng = random.Random(seed + 11)
    check = Phase("conflicts_of")
    plan = Phase("create_operation, whole")
    found = 0
    unit_id = principal.memberships[0].unit_id
    drawn = [draw_operation(rng) for _ in range(samples)]
    started_all = time.perf_counter()
    async with db.sessionmaker() as session:
        for op in drawn:
            candidate = Operation(id=uuid.uuid4(), unit_id=unit_id, **op)
            started = time.perf_counter()
            found += len(await operations.conflicts_of(session, candidate))
            check.latencies.append(time.perf_counter() - started)
    check.seconds = time.perf_counter() - started_all
    started_all = time.perf_counter()
    for op in drawn:
        started = time.perf_counter()
        async with db.sessionmaker() as session, session.begin():
            await operations.create_operation(session, principal, OperationCreate(**op))
        plan.latencies.append(time.perf_counter() - started)
    plan.seconds = time.perf_counter() - started_all
    return check, plan, found


async def counts(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return {
            "records": await conn.fetchval("select count(*) from records"),
            "selectors": await conn.fetchval("select count(*) from record_selectors"),
            "operations": await conn.fetchval("select count(*) from operations"),
            "hits": await conn.fetchval("select count(*) from hits"),
            "common": await conn.fetchval("select count(*) from common_selectors"),
        }
    finally:
        await conn.close()


def report(about: dict[str, str], before: dict[str, int], after: dict[str, int],
           phases: list[Phase], hits: int, conflicts: int, samples: int) -> str:
    filing, matching, quiet, hitting, check, plan = phases
    lines = [f"# crossintel bench: deconfliction — {about['date']}", ""]
    lines += [f"- {k}: {v}" for k, v in about.items() if k != "date"]
    lines += [
        f"- data: {before['records']:,} records, {before['selectors']:,} selectors, "
        f"{before['operations']:,} planned operations",
        f"- {samples} filings created {hits} hits ({after['common']} selectors marked common); "
        f"{samples} conflict checks found {conflicts} conflicts",
        "",
        "| measure | p50 ms | p95 ms | p99 ms | target | met |",
        "|---|---|---|---|---|---|",
        f"| hit detection in filing (`deconfliction.match`) | {matching.pct(50):.1f} | "
        f"{matching.pct(95):.1f} | {matching.pct(99):.1f} | p95 ≤ 5 ms | "
        f"{'yes' if matching.pct(95) <= 5 else '**no**'} |",
        f"| — of which filings creating no hit ({len(quiet.latencies)}) | "
        f"{quiet.triple().replace(' / ', ' | ')} | | |",
        f"| — of which filings creating hits ({len(hitting.latencies)}), with their "
        f"notifications | {hitting.triple().replace(' / ', ' | ')} | | |",
        f"| whole filing (`create_record`, committed) | {filing.triple().replace(' / ', ' | ')}"
        " | | |",
        f"| operation conflict check (`conflicts_of`) | {check.pct(50):.1f} | "
        f"{check.pct(95):.1f} | {check.pct(99):.1f} | p95 ≤ 10 ms | "
        f"{'yes' if check.pct(95) <= 10 else '**no**'} |",
        f"| planning an operation (`create_operation`, committed) | "
        f"{plan.triple().replace(' / ', ' | ')} | | |",
    ]
    return "\n".join(lines) + "\n"


async def bench(args: argparse.Namespace) -> None:
    server_url = os.environ.get("CROSSINTEL_BENCH_DATABASE_URL") or DEFAULT_SERVER
    if args.database:
        url = make_url(server_url).set(database=args.database).render_as_string(
            hide_password=False)
    else:
        url = await create_database(server_url)
    print(f"database {make_url(url).database}")
    settings = Settings(database_url=url)
    try:
        await migrate_async(url)
        if not args.database:
            await load_demo_data(url, settings)
            await load(url, args.records, seed=args.seed)
        if (await counts(url))["operations"] < args.operations:
            seconds = await load_operations(url, args.operations, args.seed)
            print(f"{args.operations:,} operations loaded in {seconds:,.0f} s")
        before = await counts(url)
        about = machine(await pg_version(url))
        db = Database(url, pool_size=2)
        try:
            print(f"filing {args.samples} records")
            filing, matching, quiet, hitting, hits = await measure_filing(
                db, settings, before["records"], args.samples, args.seed)
            print(f"checking and planning {args.samples} operations")
            check, plan, conflicts = await measure_operations(db, args.samples, args.seed)
        finally:
            await db.dispose()
        about["load average at end"] = loadavg()
        text = report(about, before, await counts(url),
                      [filing, matching, quiet, hitting, check, plan], hits, conflicts,
                      args.samples)
        print("\n" + text + f"\nwritten to {write_results(text, 'deconfliction-')}")
    finally:
        if args.keep or args.database:
            print(f"database kept: {url}")
        else:
            await drop_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--operations", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--database", metavar="NAME", help="reuse a database kept by --keep")
    args = parser.parse_args()
    try:
        asyncio.run(bench(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
