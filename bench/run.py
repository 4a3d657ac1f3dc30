"""`python -m bench.run` (`make bench`): the app against the bare baseline, at scale.

1. Creates a database `crossintel_bench_<random>` on the server of
   CROSSINTEL_BENCH_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/
   postgres), migrates it to head, loads the demo data and bulk-loads --records records.
2. Starts the app (`crossintel serve`) and the baseline (`bench.baseline`) as subprocesses
   on free ports of 127.0.0.1.
3. Measures, with --concurrency clients, each phase bounded by --duration seconds and
   --requests requests (after a short unrecorded warm-up): filing throughput and latency;
   search latency for a rare term, a common term, a term clustered in another unit's
   records and a phone selector, as a CROSS officer (cross13.police) and as the OFAST
   analyst (ofast.analyste); get-by-id latency; the servers' resident memory.
4. Prints the table and writes it to bench/results/<UTC timestamp>.md with the machine.

The subprocesses are stopped and the database dropped on exit, error or Ctrl-C (the
database is kept with --keep; `--database NAME` measures again on a kept one, without
loading (it is migrated to head first), and keeps it).
"""

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import psutil
from sqlalchemy.engine import make_url

from app.db import ROOT, Database, migrate_async
from app.services.demo import load_demo
from app.services.records import fold
from app.settings import Settings
from bench.generate import CLUSTERED_TERM, COMMON_TERM, RARE_TERM, Generator
from bench.load import asyncpg_dsn, load

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results"
PERSONAS = ("cross13.police", "ofast.analyste")
FILER = "cross13.police"
TARGETS = {"filing": 0.40, "audit": 0.85, "search_p95_ms": 50.0, "get_p95_ms": 10.0,
           "rss_mb": 250.0}


@dataclass
class Phase:
    """One measured phase: latencies of the successful requests, in seconds."""

    label: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0

    def pct(self, p: float) -> float:
        """The p-th percentile latency in milliseconds (nearest rank)."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def triple(self) -> str:
        return f"{self.pct(50):.1f} / {self.pct(95):.1f} / {self.pct(99):.1f}"


@dataclass
class Facts:
    """What the run needs to know about the loaded data."""

    records: int
    common_matches: int
    rare_matches: int
    clustered_matches: int
    clustered_in_59: int
    phone: str
    phone_records: int
    ids: list[str]
    filer_id: str
    filer_unit_id: str
    filer_agency: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def wait_ready(base_url: str, path: str, process: subprocess.Popen, log: Path) -> None:
    """Poll `path` until it answers 200, for at most 60 s."""
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise SystemExit(f"{base_url} exited:\n{tail(log)}")
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"{base_url} did not become ready in 60 s:\n{tail(log)}")


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def create_database(server_url: str) -> str:
    name = f"crossintel_bench_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, url: str) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'drop database if exists "{make_url(url).database}" with (force)')
    finally:
        await admin.close()


async def load_demo_data(url: str, settings: Settings) -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.sessionmaker() as session, session.begin():
            await load_demo(session, settings)
    finally:
        await db.dispose()


async def gather_facts(url: str) -> Facts:
    """Counts for the search terms, a phone filed in a network-scope record of CROSS-13 and
    ids of CROSS-13 records both personas see (scope chain or network)."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        matches = "select count(*) from records where search @@ websearch_to_tsquery('french', $1)"
        clustered = await conn.fetchrow(
            "select count(*) as n, count(*) filter (where u.code = 'CROSS-59') as in_59 "
            "from records r join units u on u.id = r.unit_id "
            "where r.search @@ websearch_to_tsquery('french', $1)", fold(CLUSTERED_TERM))
        filer = await conn.fetchrow(
            "select us.id, us.agency, m.unit_id from users us join memberships m "
            "on m.user_id = us.id where us.username = $1", FILER)
        phone = await conn.fetchrow(
            "select s.value, (select count(*) from record_selectors o where o.type = 'phone' "
            "and o.value = s.value) as n from record_selectors s join records r "
            "on r.id = s.record_id where s.type = 'phone' and r.scope = 'network' "
            "and r.unit_id = $1 order by r.seq desc limit 1", filer["unit_id"])
        ids = await conn.fetch(
            "select id from records where unit_id = $1 and scope in ('chain', 'network') "
            "order by random() limit 1000", filer["unit_id"])
        return Facts(
            records=await conn.fetchval("select count(*) from records"),
            common_matches=await conn.fetchval(matches, fold(COMMON_TERM)),
            rare_matches=await conn.fetchval(matches, fold(RARE_TERM)),
            clustered_matches=clustered["n"], clustered_in_59=clustered["in_59"],
            phone=phone["value"], phone_records=phone["n"], ids=[str(r["id"]) for r in ids],
            filer_id=str(filer["id"]), filer_unit_id=str(filer["unit_id"]),
            filer_agency=filer["agency"],
        )
    finally:
        await conn.close()


def national(e164: str) -> str:
    """+33612345678 -> 06 12 34 56 78 (searched as typed; the app normalises it)."""
    digits = "0" + e164.removeprefix("+33")
    return " ".join(digits[i : i + 2] for i in range(0, 10, 2))


async def measure(
    label: str, send: Callable[[int], Awaitable[httpx.Response]], expected: int,
    concurrency: int, duration: float, max_requests: int,
) -> Phase:
    """Run `send(i)` from `concurrency` workers until `duration` seconds or `max_requests`
    requests have passed, after `2 × concurrency` unrecorded warm-up requests."""
    phase = Phase(label)
    warmup = 2 * concurrency

    async def worker(indices: Iterator[int], deadline: float, record: bool) -> None:
        for i in indices:
            if time.perf_counter() > deadline:
                return
            began = time.perf_counter()
            try:
                response = await send(i)
            except httpx.TransportError as exc:
                phase.errors += 1
                phase.first_error = phase.first_error or repr(exc)
                continue
            elapsed = time.perf_counter() - began
            if response.status_code != expected:
                phase.errors += 1
                phase.first_error = phase.first_error or f"{response.status_code} {response.text}"
            elif record:
                phase.latencies.append(elapsed)

    warm = iter(range(warmup))
    deadline = time.perf_counter() + 60
    await asyncio.gather(*(worker(warm, deadline, False) for _ in range(concurrency)))
    todo = iter(range(warmup, warmup + max_requests))
    began = time.perf_counter()
    await asyncio.gather(*(worker(todo, began + duration, True) for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - began
    mark = f"  {phase.errors} errors, first: {phase.first_error[:300]}" if phase.errors else ""
    print(f"  {label:<30} {len(phase.latencies):>6} req {phase.rate:>8.1f}/s  "
          f"p50/p95/p99 {phase.triple()} ms{mark}", flush=True)
    return phase


class Sampler:
    """Peak resident memory of some processes, sampled every 0.5 s while running."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = dict.fromkeys(pids, 0)
        self.task: asyncio.Task | None = None

    def rss(self) -> dict[str, int]:
        return {name: p.memory_info().rss for name, p in self.processes.items()}

    async def _run(self) -> None:
        while True:
            for name, value in self.rss().items():
                self.peak[name] = max(self.peak[name], value)
            await asyncio.sleep(0.5)

    def __enter__(self) -> "Sampler":
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        self.task.cancel()


async def token(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post("/api/v1/auth/token", data={
        "grant_type": "password", "username": username, "password": password})
    response.raise_for_status()
    return response.json()["access_token"]


async def run_phases(args: argparse.Namespace, app_url: str, base_url: str, facts: Facts,
                     password: str, unaudited_url: str) -> dict[str, Phase]:
    """Every measured phase, keyed `<kind>:<target>`."""
    limits = httpx.Limits(max_connections=args.concurrency,
                          max_keepalive_connections=args.concurrency)
    timeout = httpx.Timeout(30)
    phases: dict[str, Phase] = {}
    bodies = [json.dumps(f.body).encode() for f in
              Generator(args.seed + 1, args.requests).filings(args.requests + 2 * args.concurrency)]
    json_header = {"Content-Type": "application/json"}
    async with (httpx.AsyncClient(base_url=app_url, limits=limits, timeout=timeout) as app,
                httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as base,
                httpx.AsyncClient(base_url=unaudited_url, limits=limits,
                                  timeout=timeout) as unaudited):
        auth = {u: {"Authorization": f"Bearer {await token(app, u, password)}"} for u in PERSONAS}
        bounds = (args.concurrency, args.duration, args.requests)
        print("filing, with the audit trail on and off in alternate rounds")
        rounds = 4
        phases["file:app"] = Phase(f"app, {FILER}")
        phases["file:unaudited"] = Phase(f"app without audit, {FILER}")
        targets = {"file:app": app, "file:unaudited": unaudited}
        for n in range(rounds):
            # Alternate rounds, each side first in turn: neither profits from the warmer
            # caches or suffers the background work (autovacuum, checkpoints) of its slot.
            for key in (("file:app", "file:unaudited") if n % 2 == 0 else
                        ("file:unaudited", "file:app")):
                part = await measure(
                    phases[key].label,
                    lambda i, c=targets[key]: c.post("/api/v1/records", content=bodies[i],
                                                     headers={**auth[FILER], **json_header}),
                    201, args.concurrency, args.duration / rounds, args.requests // rounds)
                phases[key].latencies += part.latencies
                phases[key].seconds += part.seconds
                phases[key].errors += part.errors
        phases["file:base"] = await measure(
            "baseline", lambda i: base.post("/records", content=bodies[i], headers=json_header),
            201, *bounds)
        if args.filing_only:
            return phases
        searches = {"rare": {"q": RARE_TERM}, "common": {"q": COMMON_TERM},
                    "clustered": {"q": CLUSTERED_TERM},
                    "selector": {"selector": national(facts.phone),
                                 "purpose": "Recoupement du numero (bench)"}}
        for kind, params in searches.items():
            print(f"search {kind} {params}")
            for user in PERSONAS:
                phases[f"{kind}:{user}"] = await measure(
                    f"app, {user}", lambda i, u=user, p=params: app.get(
                        "/api/v1/records", params=p, headers=auth[u]), 200, *bounds)
            phases[f"{kind}:base"] = await measure(
                "baseline", lambda i, p=params: base.get("/records", params=p), 200, *bounds)
        print("get by id")
        ids = facts.ids
        for user in PERSONAS:
            phases[f"get:{user}"] = await measure(
                f"app, {user}", lambda i, u=user: app.get(
                    f"/api/v1/records/{ids[i % len(ids)]}", headers=auth[u]), 200, *bounds)
        phases["get:base"] = await measure(
            "baseline", lambda i: base.get(f"/records/{ids[i % len(ids)]}"), 200, *bounds)
    return phases


def machine(pg_version: str) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), "unknown")
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 1024**2
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": f"{os.cpu_count()} × {model}",
        "memory": f"{memory_gib:.1f} GiB",
        "postgresql": pg_version,
        "python": sys.version.split()[0],
        "commit": subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                 capture_output=True, text=True).stdout.strip() or "unknown",
        "load average at start": loadavg(),
    }


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages: anything else running skews the figures."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(args: argparse.Namespace, facts: Facts, loaded: dict[str, float] | None,
           phases: dict[str, Phase], rss: dict[str, tuple[int, int]],
           about: dict[str, str]) -> str:
    """The results as Markdown: machine, data, summary against the targets, every phase."""
    mb = 1024 * 1024

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    file_ratio = phases["file:app"].rate / phases["file:base"].rate
    audit_ratio = phases["file:app"].rate / phases["file:unaudited"].rate
    lines = [f"# crossintel bench — {about['date']}", ""]
    lines += [f"- {k}: {v}" for k, v in about.items() if k != "date"]
    lines += [
        f"- records: {facts.records:,} " + (
            f"(bulk load of {loaded['records']:,.0f} records and {loaded['selectors']:,.0f} "
            f"selectors in {loaded['seconds']:,.0f} s: {loaded['records_per_second']:,.0f} "
            "records/s)" if loaded else f"(reused database {args.database})"),
        f"- clients: {args.concurrency} concurrent, each phase ≤ {args.duration:g} s and "
        f"≤ {args.requests:,} requests, after {2 * args.concurrency} warm-up requests",
        f"- common term \"{COMMON_TERM}\": {facts.common_matches:,} records "
        f"({facts.common_matches / facts.records:.1%}); rare term \"{RARE_TERM}\": "
        f"{facts.rare_matches:,} ({facts.rare_matches / facts.records:.3%}); clustered "
        f"term \"{CLUSTERED_TERM}\": {facts.clustered_matches:,} "
        f"({facts.clustered_matches / facts.records:.2%}; {facts.clustered_in_59:,} of them "
        f"filed in CROSS-59); phone {national(facts.phone)} in {facts.phone_records} records",
        "",
        "| measure | app, cross13.police | app, ofast.analyste | baseline | target | met |",
        "|---|---|---|---|---|---|",
        f"| filing, records/s | {phases['file:app'].rate:,.0f} | – | "
        f"{phases['file:base'].rate:,.0f} | ≥ 40 % of baseline ({file_ratio:.0%}) | "
        f"{verdict(file_ratio >= TARGETS['filing'])} |",
        f"| filing p50 / p95 / p99, ms | {phases['file:app'].triple()} | – | "
        f"{phases['file:base'].triple()} | | |",
        f"| filing with the audit off, records/s | {phases['file:unaudited'].rate:,.0f} | – | "
        f"– | audit on ≥ 85 % of off ({audit_ratio:.0%}) | "
        f"{verdict(audit_ratio >= TARGETS['audit'])} |",
        f"| filing with the audit off p50 / p95 / p99, ms | "
        f"{phases['file:unaudited'].triple()} | – | – | | |",
    ]
    names = {"rare": f"search \"{RARE_TERM}\" (rare)",
             "common": f"search \"{COMMON_TERM}\" (common)",
             "clustered": f"search \"{CLUSTERED_TERM}\" (clustered in CROSS-59)",
             "selector": "search phone selector", "get": "get by id"}
    for kind, name in names.items():
        if f"{kind}:base" not in phases:
            continue
        limit = TARGETS["get_p95_ms" if kind == "get" else "search_p95_ms"]
        worst = max(phases[f"{kind}:{u}"].pct(95) for u in PERSONAS)
        cells = " | ".join(phases[f"{kind}:{u}"].triple() for u in PERSONAS)
        lines.append(f"| {name} p50 / p95 / p99, ms | {cells} | {phases[f'{kind}:base'].triple()}"
                     f" | p95 ≤ {limit:g} ms | {verdict(worst <= limit)} |")
    app_rss, base_rss = rss["app"], rss["baseline"]
    lines += [
        f"| server RSS after run (peak), MB | {app_rss[0] / mb:.0f} ({app_rss[1] / mb:.0f}) | – "
        f"| {base_rss[0] / mb:.0f} ({base_rss[1] / mb:.0f}) | ≤ {TARGETS['rss_mb']:g} MB per "
        f"worker | {verdict(max(app_rss) / mb <= TARGETS['rss_mb'])} |",
        "",
        "| phase | requests | errors | seconds | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, p in phases.items():
        top = max(p.latencies, default=float("nan")) * 1000
        lines.append(f"| {key} | {len(p.latencies)} | {p.errors} | {p.seconds:.1f} | "
                     f"{p.rate:.1f} | {p.pct(50):.1f} | {p.pct(95):.1f} | {p.pct(99):.1f} | "
                     f"{top:.1f} |")
    return "\n".join(lines) + "\n"


def write_results(text: str, prefix: str = "") -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{prefix}{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.md"
    out.write_text(text)
    return out


async def bench(args: argparse.Namespace, work: Path) -> None:
    """The whole run; SIGTERM cancels it like Ctrl-C, through the same clean-up."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    server_url = os.environ.get("CROSSINTEL_BENCH_DATABASE_URL") or DEFAULT_SERVER
    if args.database:
        url = make_url(server_url).set(database=args.database).render_as_string(hide_password=False)
    else:
        url = await create_database(server_url)
    print(f"database {make_url(url).database} on {make_url(url).host or 'local socket'}")
    processes: list[subprocess.Popen] = []
    try:
        settings = Settings(database_url=url, data_dir=work)
        await migrate_async(url)
        loaded = None
        if not args.database:
            await load_demo_data(url, settings)
            loaded = await load(url, args.records, seed=args.seed)
        facts = await gather_facts(url)
        print(f"{facts.records:,} records; \"{COMMON_TERM}\" in "
              f"{facts.common_matches / facts.records:.1%}, \"{RARE_TERM}\" in "
              f"{facts.rare_matches:,}, \"{CLUSTERED_TERM}\" in {facts.clustered_matches:,}; "
              f"phone {national(facts.phone)} in {facts.phone_records} records")
        if facts.common_matches / facts.records <= 0.10:
            print(f"warning: \"{COMMON_TERM}\" matches 10 % of records or fewer")
        app_port, base_port = free_port(), free_port()
        env = {**os.environ, "CROSSINTEL_DATABASE_URL": url, "CROSSINTEL_DATA_DIR": str(work),
               "CROSSINTEL_ACCESS_TOKEN_TTL_SECONDS": "7200"}
        app_log, base_log = work / "app.log", work / "baseline.log"
        processes.append(start([sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(app_port)], env, app_log))
        unaudited_port = free_port()
        processes.append(start([sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(unaudited_port)],
                               {**env, "CROSSINTEL_AUDIT_ENABLED": "false"},
                               work / "app-unaudited.log"))
        processes.append(start([sys.executable, "-m", "bench.baseline", "--database-url",
                                asyncpg_dsn(url), "--port", str(base_port), "--unit-id",
                                facts.filer_unit_id, "--author-id", facts.filer_id, "--agency",
                                facts.filer_agency], env, base_log))
        app_url, base_url = f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{base_port}"
        await wait_ready(app_url, "/healthz", processes[0], app_log)
        unaudited_url = f"http://127.0.0.1:{unaudited_port}"
        await wait_ready(unaudited_url, "/healthz", processes[1], work / "app-unaudited.log")
        await wait_ready(base_url, "/docs", processes[2], base_log)
        about = machine(await pg_version(url))
        with Sampler({"app": processes[0].pid, "baseline": processes[2].pid}) as sampler:
            phases = await run_phases(args, app_url, base_url, facts,
                                      settings.demo_password.get_secret_value(), unaudited_url)
            after = sampler.rss()
        about["load average at end"] = loadavg()
        rss = {name: (after[name], max(after[name], sampler.peak[name])) for name in after}
        text = report(args, facts, loaded, phases, rss, about)
        print("\n" + text + f"\nwritten to {write_results(text)}")
    finally:
        for process in processes:
            stop(process)
        if args.keep or args.database:
            print(f"database kept: {url}")
        else:
            await drop_database(server_url, url)


async def pg_version(url: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        version = await conn.fetchval("show server_version")
        buffers = await conn.fetchval("show shared_buffers")
    finally:
        await conn.close()
    return f"{version} (shared_buffers {buffers})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records to bulk-load")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=15, help="seconds per phase, at most")
    parser.add_argument("--requests", type=int, default=3000, help="requests per phase, at most")
    parser.add_argument("--seed", type=int, default=1, help="data generator seed")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--filing-only", action="store_true",
                        help="measure filing only (audit on and off, baseline)")
    parser.add_argument("--database", metavar="NAME",
                        help="reuse a database kept by --keep (no load; never dropped)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crossintel-bench-") as work:
        try:
            asyncio.run(bench(args, Path(work)))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted", file=sys.stderr)
            sys.exit(130)


if __name__ == "__main__":
    main()
