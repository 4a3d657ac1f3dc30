"""`python -m bench.cases`: the review queue and case search, at scale.

The target (cases issue): the pending queue and case search answer with p95 ≤ 25 ms, with
100,000 cases and 10,000 pending escalations, on this machine.

1. Creates a database `crossintel_bench_cases_<random>` on the server of
   CROSSINTEL_BENCH_DATABASE_URL (default postgresql+asyncpg://postgres@127.0.0.1:5432/
   postgres), migrates it to head and loads the demo data.
2. Bulk-loads with COPY --cases cases over the demo CROSS units (most in CROSS-13, -83 and
   -59), with their references and counters, custody units, team, timeline, and escalations:
   --pending pending ones (CROSS → its antenne mostly, antenne → OFAST, some CROSS → OFAST;
   urgent, high and routine; created over the last 30 days, many overdue) and decided
   ones (accepted, which moved custody; returned; declined). VACUUM ANALYZE.
3. Starts the app (`uvicorn --factory bench.asgi_app:create_app`) on a free port of
   127.0.0.1 and measures, with --concurrency clients and then with one, each phase
   bounded by --duration seconds and --requests requests after a warm-up: the review queue
   of marseille.chef and of ofast.chef (every queue below OFAST), and cross13.chef's case
   list, reference and title searches, escalated-and-urgent filter and next pages.
4. EXPLAIN (ANALYZE, BUFFERS) of the statements the app's own service functions send for
   each phase, with the same parameters.
5. Prints the table and writes it, with the plans, to bench/results/cases-<UTC timestamp>.md.

The app is stopped and the database dropped on exit, error or Ctrl-C (kept with --keep;
`--database NAME` measures again on a kept one, without loading, and keeps it;
`--explain-only` with it prints the plans and measures nothing).
"""

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from app.auth.principal import load_principal
from app.db import Database, migrate_async
from app.models import User
from app.services import cases as cases_service
from app.services import escalations as escalations_service
from app.services.demo import DEPARTEMENTS
from app.settings import Settings
from bench.generate import CITES, COMMUNES, PORTS
from bench.load import asyncpg_dsn, ensure_authors
from bench.run import (
    DEFAULT_SERVER,
    Phase,
    drop_database,
    free_port,
    load_demo_data,
    loadavg,
    machine,
    measure,
    pg_version,
    start,
    stop,
    tail,
    token,
    wait_ready,
    write_results,
)

TARGET_P95_MS = 25.0
# Share of the cases filed in each unit; OTHER_SHARE is spread over every other CROSS.
UNIT_SHARES = {"CROSS-13": 30, "CROSS-83": 13, "CROSS-59": 13, "CROSS-06": 7, "CROSS-75": 7,
               "CROSS-69": 6, "CROSS-33": 6}
OTHER_SHARE = 18
SPAN = timedelta(days=3 * 365)
PRIORITY_WEIGHTS = (("routine", 55), ("high", 30), ("urgent", 15))
PRIORITY_RANK = escalations_service.PRIORITY_RANK
BUMP = {"routine": "high", "high": "urgent", "urgent": "urgent"}
OUTCOMES = (("judicial_referral", 50), ("no_further_action", 25), ("transferred", 15),
            ("merged", 10))
ACCEPTED_SHARE = 0.03       # of the cases: escalated CROSS → antenne earlier and accepted
TO_OFAST_SHARE = 0.10       # of those: then antenne → OFAST, accepted
REFUSED_SHARE = 0.04        # of the cases: escalated earlier, returned or declined
PENDING_FROM_ANTENNE = 0.10  # of the pending: antenne → OFAST
PENDING_DIRECT = 0.04       # of the pending: CROSS → OFAST directly
EXTRA_MEMBER_SHARE = 0.04   # of the cases: one more team member, from any unit
TITLE_WORD = "Gardanne"
"""A Bouches-du-Rhône commune in about 1.5 % of CROSS-13's case titles."""

DRUGS = ("résine de cannabis", "herbe de cannabis", "cocaïne", "héroïne", "MDMA", "crack",
         "cathinones de synthèse", "kétamine")
ORIGINS = ("Espagne", "Pays-Bas", "Belgique", "Maroc")
ROADS = ("A7", "A8", "A9", "A1", "A6", "A10", "A61")
TITLES = (
    ("Point de deal de la cité {cite} — {commune}", 20),
    ("Trafic de {drug} — {commune}", 18),
    ("Go-fast {origin} – {commune}", 8),
    ("Importation de {drug} par conteneur — port de {port}", 6),
    ("Livraisons de {drug} commandées par messagerie — {commune}", 8),
    ("Blanchiment par commerces de façade — {commune}", 6),
    ("Nourrice et stockage de {drug} — {commune}", 8),
    ("Culture de cannabis en intérieur — {commune}", 6),
    ("Réseau d'approvisionnement en {drug} — {commune} et environs", 10),
    ("Transport de {drug} par la route — {road}", 5),
    ("Règlements de comptes liés au trafic — {commune}", 5),
)
SUMMARIES = (
    "Enquête ouverte sur renseignement d'une source humaine fiable.",
    "Exploitation de réquisitions téléphoniques et de surveillances physiques.",
    "Suite de la saisie réalisée lors d'un contrôle routier.",
    "Recoupement de plusieurs fiches de renseignement des services partenaires.",
    "Signalement des douanes après ciblage d'un conteneur.",
)
JUSTIFICATIONS = (
    "Ramifications hors du département : coordination interservices nécessaire.",
    "Volumes en jeu dépassant le cadre départemental.",
    "Lien établi avec un réseau suivi au niveau national.",
    "Dimension internationale (Espagne, Pays-Bas) : demande d'appui.",
    "Co-saisine JIRS envisagée : arbitrage demandé.",
)
NOTES = {
    "accepted": "Prise en charge : le dossier est suivi à notre niveau.",
    "returned": "Compléments demandés : préciser les liens avec les autres dossiers.",
    "declined": "Hors du périmètre : le dossier reste au niveau départemental.",
}


# --- loading -------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitInfo:
    id: uuid.UUID
    code: str
    kind: str
    parent_id: uuid.UUID | None
    departement: str | None


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    username: str


@dataclass
class CaseRow:
    id: uuid.UUID
    reference: str
    origin: UnitInfo
    unit: UnitInfo
    lead: Person
    title: str
    summary: str
    priority: str
    status: str
    judicial_reference: str | None
    outcome: str | None
    outcome_note: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    version: int = 1
    custodians: list[uuid.UUID] = field(default_factory=list)

    def row(self) -> tuple:
        return (self.id, self.reference, self.unit.id, self.custodians, self.lead.id,
                self.title, self.summary, self.priority, self.status, self.judicial_reference,
                self.outcome, self.outcome_note, self.version, self.lead.username,
                self.created_at, self.updated_at)


CASE_COLUMNS = ("id", "reference", "unit_id", "custodian_unit_ids", "lead_user_id", "title",
                "summary", "priority", "status", "judicial_reference", "outcome",
                "outcome_note", "version", "created_by", "created_at", "updated_at")
ESCALATION_COLUMNS = ("id", "case_id", "from_unit_id", "to_unit_id", "requested_by",
                      "justification", "priority", "priority_rank", "status", "due_at",
                      "decided_by", "decision_note", "created_at", "decided_at")
MEMBER_COLUMNS = ("case_id", "user_id", "role", "expires_at", "added_by", "added_at")
EVENT_COLUMNS = ("id", "case_id", "actor", "action", "details", "created_at")


class Plan:
    """Every row to load, generated from one seed."""

    def __init__(self, rng: random.Random, units: list[UnitInfo],
                 staff: dict[uuid.UUID, list[tuple[Person, str]]], now: datetime,
                 settings: Settings) -> None:
        self.rng, self.now, self.settings = rng, now, settings
        self.units = {u.id: u for u in units}
        self.by_code = {u.code: u for u in units}
        self.staff = staff
        everyone = {p for people in staff.values() for p, _ in people}
        self.everyone = sorted(everyone, key=lambda p: p.username)
        # Units without an officer of their own get a lead from elsewhere: any active
        # officer outside CROSS-13, so that the CROSS-13 personas measured see their unit's
        # cases and the teams they were put on, nothing more.
        cross13 = self.by_code["CROSS-13"].id
        self.fallback = sorted({p for unit_id, people in staff.items() if unit_id != cross13
                                for p, role in people if role == "officer"},
                               key=lambda p: p.username)
        if not self.fallback:
            raise SystemExit("no active officer outside CROSS-13: is the demo data loaded?")
        self.cases: list[CaseRow] = []
        self.members: list[tuple] = []
        self.escalations: list[tuple] = []
        self.events: list[tuple] = []
        self.counters: dict[tuple[uuid.UUID, int], int] = {}
        self._cumulative: dict[tuple, tuple[list, list[float]]] = {}
        self._supervisors: dict[uuid.UUID, str | None] = {}

    # helpers

    def pick(self, weighted: tuple[tuple[str, float], ...]) -> str:
        if weighted not in self._cumulative:
            values = [v for v, _ in weighted]
            self._cumulative[weighted] = (values, list(accumulate(w for _, w in weighted)))
        values, cumulative = self._cumulative[weighted]
        return self.rng.choices(values, cum_weights=cumulative)[0]

    def between(self, start: datetime, end: datetime) -> datetime:
        return start + (end - start) * self.rng.random()

    def parent(self, unit: UnitInfo) -> UnitInfo | None:
        return self.units.get(unit.parent_id) if unit.parent_id else None

    def supervisor(self, unit: UnitInfo) -> str | None:
        """A supervisor of the unit, else of the nearest unit above that has one."""
        if unit.id not in self._supervisors:
            above: UnitInfo | None = unit
            name = None
            while above is not None and name is None:
                name = next((p.username for p, role in self.staff.get(above.id, ())
                             if role == "supervisor"), None)
                above = self.parent(above)
            self._supervisors[unit.id] = name
        return self._supervisors[unit.id]

    def title(self, unit: UnitInfo) -> str:
        communes = COMMUNES.get(unit.departement or "")
        if communes:
            # Zipf-like: the most populous communes come up most.
            commune = self.pick(tuple((c[0], 1 / (rank + 1)) for rank, c in enumerate(communes)))
        else:
            commune = DEPARTEMENTS.get(unit.departement or "", unit.code)
        template = self.pick(TITLES)
        return template.format(cite=self.rng.choice(CITES), commune=commune,
                               drug=self.rng.choice(DRUGS), origin=self.rng.choice(ORIGINS),
                               port=self.rng.choice(PORTS), road=self.rng.choice(ROADS))

    def log(self, case: CaseRow, actor: str, action: str, at: datetime, **details: Any) -> None:
        self.events.append((uuid.uuid4(), case.id, actor, action,
                            json.dumps(details, ensure_ascii=False, default=str), at))
        case.updated_at = max(case.updated_at, at)

    def escalation(self, case: CaseRow, source: UnitInfo, target: UnitInfo, created: datetime,
                   status: str, decided: datetime | None = None,
                   priority: str | None = None) -> uuid.UUID:
        priority = priority or case.priority
        escalation_id = uuid.uuid4()
        # A supervisor of the unit escalates; in a unit without one, its lead stands in.
        requested_by = next((p.username for p, role in self.staff.get(source.id, ())
                             if role == "supervisor"), case.lead.username)
        decided_by = (self.supervisor(target) or "ofast.chef") if decided else None
        note = NOTES.get(status)
        justification = self.rng.choice(JUSTIFICATIONS)
        self.escalations.append((
            escalation_id, case.id, source.id, target.id, requested_by, justification,
            priority, PRIORITY_RANK[priority], status,
            created + timedelta(hours=self.settings.review_hours(priority)), decided_by,
            note if decided else None, created, decided))
        self.log(case, requested_by, "escalated", created, escalation_id=escalation_id,
                 to_unit=target.code, priority=priority, justification=justification)
        case.version += 1
        if decided:
            self.log(case, decided_by, f"escalation_{status}", decided,
                     escalation_id=escalation_id, by_unit=target.code, note=note)
            case.version += 1
        return escalation_id

    # the plan

    def build(self, n_cases: int, n_pending: int) -> None:
        crosses = [u for u in self.units.values() if u.kind == "cross"]
        heavy = [self.by_code[c] for c in UNIT_SHARES if c in self.by_code]
        others = sorted((u for u in crosses if u.code not in UNIT_SHARES), key=lambda u: u.code)
        raw = [self.rng.uniform(0.3, 1.7) for _ in others]
        weights = [UNIT_SHARES[u.code] for u in heavy] + [
            OTHER_SHARE * w / sum(raw) for w in raw]
        origins = self.rng.choices(heavy + others, weights, k=n_cases)
        seconds = SPAN.total_seconds()
        created = sorted(self.now - timedelta(seconds=self.rng.uniform(3600, seconds))
                         for _ in range(n_cases))
        for origin, at in zip(origins, created, strict=True):
            self.new_case(origin, at.replace(microsecond=0))
        self.move_and_refuse()
        self.pending(n_pending)
        self.teams()
        self.events.sort(key=lambda e: e[5])

    def new_case(self, origin: UnitInfo, at: datetime) -> None:
        key = (origin.id, at.year)
        self.counters[key] = number = self.counters.get(key, 0) + 1
        # Officers lead most cases; a supervisor leads a few.
        people = [p for p, role in self.staff.get(origin.id, ())
                  for _ in range(1 if role == "supervisor" else 3)] or self.fallback
        lead = self.rng.choice(people)
        age_days = (self.now - at).days
        closed = self.rng.random() < min(0.7, age_days / 900)
        case = CaseRow(
            id=uuid.uuid4(), reference=f"{origin.code.replace('-', '')}-{at.year}-{number:04d}",
            origin=origin, unit=origin, lead=lead, title=self.title(origin),
            summary=self.rng.choice(SUMMARIES), priority=self.pick(PRIORITY_WEIGHTS),
            status="open", judicial_reference=None, outcome=None, outcome_note=None,
            created_at=at, updated_at=at,
        )
        if self.rng.random() < 0.35:
            case.judicial_reference = (f"Parquet JIRS n° {at.year % 100:02d}/"
                                       f"{self.rng.randrange(1, 999_999):06d}")
        self.cases.append(case)
        case.custodians.append(origin.id)
        self.members.append((case.id, lead.id, "lead", None, lead.username, at))
        self.log(case, lead.username, "created", at, reference=case.reference,
                 title=case.title, priority=case.priority, unit=origin.code)
        if closed:
            closed_at = self.between(at, min(self.now, at + timedelta(days=400)))
            case.status, case.outcome, case.closed_at = "closed", self.pick(OUTCOMES), closed_at
            case.outcome_note = "Clôture après synthèse transmise au parquet."
            self.log(case, lead.username, "closed", closed_at, outcome=case.outcome,
                     note=case.outcome_note)
            case.version += 1

    def move_and_refuse(self) -> None:
        """Earlier escalations, decided before the last 30 days: accepted ones moved custody
        up (the origin stays a custodian); returned and declined ones left it."""
        horizon = self.now - timedelta(days=31)
        old = [c for c in self.cases if c.created_at < horizon - timedelta(days=2)]
        chosen = self.rng.sample(old, min(len(old), round(len(self.cases) * (
            ACCEPTED_SHARE + REFUSED_SHARE))))
        accepted_n = round(len(self.cases) * ACCEPTED_SHARE)
        ofast = self.by_code["OFAST"]
        for i, case in enumerate(chosen):
            antenne = self.parent(case.origin)
            if antenne is None:
                continue
            end = min(horizon, case.created_at + timedelta(days=240),
                      case.closed_at or horizon)
            if end < case.created_at + timedelta(days=2):
                continue
            created = self.between(case.created_at + timedelta(days=1), end)
            hours = self.settings.review_hours(case.priority)
            decided = min(end, created + timedelta(hours=hours * self.rng.uniform(0.1, 1.6)))
            if i >= accepted_n:
                status = "returned" if self.rng.random() < 0.6 else "declined"
                self.escalation(case, case.origin, antenne, created, status, decided)
                continue
            self.escalation(case, case.origin, antenne, created, "accepted", decided)
            case.unit = antenne
            case.custodians.append(antenne.id)
            if self.rng.random() < TO_OFAST_SHARE and decided + timedelta(days=2) < end:
                again = self.between(decided + timedelta(days=1), end)
                decided2 = min(end, again + timedelta(hours=self.rng.uniform(2, 96)))
                self.escalation(case, antenne, ofast, again, "accepted", decided2)
                case.unit = ofast
                case.custodians.append(ofast.id)

    def pending(self, n_pending: int) -> None:
        """Pending escalations of open cases, created over the last 30 days: CROSS → its
        antenne mostly, antenne → OFAST for cases the antenne holds, some CROSS → OFAST."""
        ofast = self.by_code["OFAST"]
        open_cases = [c for c in self.cases if c.status == "open"]
        at_antenne = [c for c in open_cases if c.unit.kind == "antenne"]
        at_cross = [c for c in open_cases if c.unit.kind == "cross"]
        n_antenne = min(len(at_antenne), round(n_pending * PENDING_FROM_ANTENNE))
        if n_pending - n_antenne > len(at_cross):
            raise SystemExit(f"--pending {n_pending} needs more open cases than the "
                             f"{len(at_cross) + n_antenne} there are: load more --cases")
        month = self.now - timedelta(days=30)
        chosen = (self.rng.sample(at_antenne, n_antenne)
                  + self.rng.sample(at_cross, n_pending - n_antenne))
        for case in chosen:
            if case.unit.kind == "antenne" or self.rng.random() < PENDING_DIRECT:
                target = ofast
            else:
                target = self.parent(case.unit)
            created = self.between(max(month, case.created_at + timedelta(minutes=10)),
                                   self.now - timedelta(minutes=1))
            priority = case.priority if self.rng.random() < 0.75 else BUMP[case.priority]
            self.escalation(case, case.unit, target, created, "pending", priority=priority)
            case.status = "escalated"

    def teams(self) -> None:
        """One more member on a few teams, from any unit; some with an expiry (past or
        future)."""
        for case in self.rng.sample(self.cases, round(len(self.cases) * EXTRA_MEMBER_SHARE)):
            user = self.rng.choice(self.everyone)
            if user == case.lead:
                continue
            draw = self.rng.random()
            expires = (None if draw < 0.7 else
                       self.now - timedelta(days=self.rng.uniform(1, 60)) if draw < 0.85 else
                       self.now + timedelta(days=self.rng.uniform(1, 120)))
            added = self.between(case.created_at, min(self.now, case.created_at
                                                      + timedelta(days=60)))
            role = "member" if self.rng.random() < 0.8 else "observer"
            self.members.append((case.id, user.id, role, expires, case.lead.username, added))
            self.log(case, case.lead.username, "team_member_set", added, user=user.username,
                     role=role, expires_at=expires)


async def read_units_and_staff(
    conn: asyncpg.Connection,
) -> tuple[list[UnitInfo], dict[uuid.UUID, list[tuple[Person, str]]]]:
    units = [UnitInfo(r["id"], r["code"], r["kind"], r["parent_id"], r["departement"])
             for r in await conn.fetch(
                 "select id, code, kind, parent_id, departement from units order by code")]
    staff: dict[uuid.UUID, list[tuple[Person, str]]] = {}
    for r in await conn.fetch("""
            select m.unit_id, u.id, u.username, m.role
              from memberships m join users u on u.id = m.user_id
             where u.is_active and m.role in ('officer', 'supervisor')
               and cardinality(u.platform_roles) = 0
             order by u.username"""):
        staff.setdefault(r["unit_id"], []).append((Person(r["id"], r["username"]), r["role"]))
    return units, staff


async def load_cases(url: str, settings: Settings, n_cases: int, n_pending: int,
                     seed: int) -> dict[str, float]:
    """Generate and COPY the cases and everything around them; returns counts and timings."""
    started = time.perf_counter()
    created = await ensure_authors(url)
    if created:
        print(f"bench officers created: {', '.join(created)}", flush=True)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute("set synchronous_commit = off; set timezone = 'UTC'")
        units, staff = await read_units_and_staff(conn)
        now = (await conn.fetchval("select now()")).astimezone(UTC)
        plan = Plan(random.Random(seed), units, staff, now, settings)
        plan.build(n_cases, n_pending)
        generated = time.perf_counter()
        print(f"generated {len(plan.cases):,} cases, {len(plan.escalations):,} escalations, "
              f"{len(plan.events):,} timeline events in {generated - started:.1f} s", flush=True)
        tables = (
            ("cases", [c.row() for c in plan.cases], CASE_COLUMNS),
            ("case_counters", [(u, y, n) for (u, y), n in plan.counters.items()],
             ("unit_id", "year", "last")),
            ("case_members", plan.members, MEMBER_COLUMNS),
            ("escalations", plan.escalations, ESCALATION_COLUMNS),
            ("case_events", plan.events, EVENT_COLUMNS),
        )
        async with conn.transaction():
            for table, rows, columns in tables:
                began = time.perf_counter()
                await conn.copy_records_to_table(table, records=rows, columns=columns)
                print(f"  COPY {table:<16} {len(rows):>9,} rows  "
                      f"{time.perf_counter() - began:6.1f} s", flush=True)
        copied = time.perf_counter()
        await conn.execute("vacuum (analyze) cases, case_counters, case_members, escalations, "
                           "case_events")
        analyzed = time.perf_counter()
    finally:
        await conn.close()
    pending = sum(1 for e in plan.escalations if e[8] == "pending")
    stats = {"cases": len(plan.cases), "escalations": len(plan.escalations),
             "pending": pending, "custodians": sum(len(c.custodians) for c in plan.cases),
             "members": len(plan.members), "events": len(plan.events),
             "generate_seconds": generated - started, "copy_seconds": copied - generated,
             "analyze_seconds": analyzed - copied, "seconds": analyzed - started}
    print(f"loaded in {stats['seconds']:.1f} s (generate {stats['generate_seconds']:.1f} s, "
          f"COPY {stats['copy_seconds']:.1f} s, VACUUM ANALYZE "
          f"{stats['analyze_seconds']:.1f} s)", flush=True)
    return stats


# --- what the run needs to know ------------------------------------------------------


@dataclass
class Facts:
    values: dict[str, Any]
    reference_prefix: str

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


async def gather_facts(url: str) -> Facts:
    """Counts describing the data the phases run on."""
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        v: dict[str, Any] = {}
        v["cases"] = await conn.fetchval("select count(*) from cases")
        v["by_status"] = dict(await conn.fetch(
            "select status, count(*) from cases group by 1 order by 1"))
        v["escalations"] = dict(await conn.fetch(
            "select status, count(*) from escalations group by 1 order by 1"))
        v["pending"] = await conn.fetchval(
            "select count(*) from escalations where status = 'pending'")
        v["overdue"] = await conn.fetchval(
            "select count(*) from escalations where status = 'pending' and due_at < now()")
        v["pending_by_priority"] = dict(await conn.fetch(
            "select priority, count(*) from escalations where status = 'pending' "
            "group by 1 order by min(priority_rank)"))
        v["pending_by_target"] = dict(await conn.fetch("""
            select u.code, count(*) from escalations e join units u on u.id = e.to_unit_id
             where e.status = 'pending' group by 1 order by 2 desc limit 6"""))
        v["marseille_pending"] = await conn.fetchval("""
            select count(*) from escalations e join units u on u.id = e.to_unit_id
             where e.status = 'pending' and u.code = 'ANT-MARSEILLE'""")
        v["cases_by_unit"] = dict(await conn.fetch("""
            select u.code, count(*) from cases c join units u on u.id = c.unit_id
             group by 1 order by 2 desc limit 8"""))
        # What cross13.chef sees: the cases CROSS-13 has held, and its teams.
        visible = """
            with me as (select id from users where username = 'cross13.chef'),
                 seen as (
                   select c.id as case_id from cases c
                     join units u on u.id = any(c.custodian_unit_ids)
                    where u.code = 'CROSS-13'
                   union
                   select m.case_id from case_members m, me
                    where m.user_id = me.id and (m.expires_at is null or m.expires_at > now()))
            select count(*) from cases c join seen s on s.case_id = c.id where {}"""
        v["cross13_visible"] = await conn.fetchval(visible.format("true"))
        v["cross13_team_only"] = await conn.fetchval("""
            select count(*) from case_members m join users us on us.id = m.user_id
             where us.username = 'cross13.chef' and m.role <> 'lead'""")
        v["cross13_escalated_urgent"] = await conn.fetchval(
            visible.format("c.status = 'escalated' and c.priority = 'urgent'"))
        year, last = await conn.fetchrow("""
            select k.year, k.last from case_counters k join units u on u.id = k.unit_id
             where u.code = 'CROSS-13' order by (k.last >= 200) desc, k.year desc limit 1""")
        prefix = f"CROSS13-{year}-01" if last >= 200 else f"CROSS13-{year}-"
        v["reference_matches"] = await conn.fetchval(
            visible.format("c.reference ilike $1"), f"%{prefix}%")
        v["word_matches"] = await conn.fetchval(
            visible.format("(c.title ilike $1 or c.reference ilike $1)"), f"%{TITLE_WORD}%")
        return Facts(v, prefix)
    finally:
        await conn.close()


# --- the phases ----------------------------------------------------------------------


@dataclass
class Spec:
    """One measured request kind: who sends it, where, with which parameters (cycled)."""

    key: str
    title: str
    user: str
    path: str
    params: list[dict[str, Any]]
    items: int = 0
    more: bool = False


def specs(facts: Facts) -> list[Spec]:
    queue = "/api/v1/escalations"
    cases = "/api/v1/cases"
    return [
        Spec("queue", "pending queue", "marseille.chef", queue,
             [{"status": "pending", "limit": 50}]),
        Spec("queue_all", "pending queue, every unit below", "ofast.chef", queue,
             [{"status": "pending", "include_descendants": "true", "limit": 50}]),
        Spec("list", "case list", "cross13.chef", cases, [{"limit": 50}]),
        Spec("q_reference", f"search q={facts.reference_prefix}", "cross13.chef", cases,
             [{"q": facts.reference_prefix}]),
        Spec("q_word", f"search q={TITLE_WORD}", "cross13.chef", cases, [{"q": TITLE_WORD}]),
        Spec("escalated_urgent", "status=escalated&priority=urgent", "cross13.chef", cases,
             [{"status": "escalated", "priority": "urgent"}]),
        Spec("next_page", "case list, next pages by cursor", "cross13.chef", cases, []),
    ]


@dataclass
class Result:
    phase: Phase
    cpu_ms: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0  # seconds, warm-up included, as the CPU figures are


class Cpu:
    """CPU seconds used by the app process, the PostgreSQL backends of the bench database,
    the PostgreSQL processes that ended meanwhile (parallel query workers, mostly), this
    client and the whole machine, to tell where a request's time goes (and whether
    something else ran meanwhile)."""

    def __init__(self, app_pid: int, conn: asyncpg.Connection, server_pid: int) -> None:
        self.app = psutil.Process(app_pid)
        self.me = psutil.Process()
        self.conn = conn
        # The postmaster: the CPU time of its children that exited (parallel workers are
        # short-lived processes) is added to its own `children_*` times when reaped.
        self.postmaster = psutil.Process(server_pid).parent()

    @classmethod
    async def start(cls, app_pid: int, conn: asyncpg.Connection) -> "Cpu":
        return cls(app_pid, conn, await conn.fetchval("select pg_backend_pid()"))

    @staticmethod
    def _seconds(process: psutil.Process) -> float:
        times = process.cpu_times()
        return times.user + times.system

    async def snapshot(self) -> dict[str, Any]:
        backends: dict[int, float] = {}
        for row in await self.conn.fetch(
                "select pid from pg_stat_activity where datname = current_database() "
                "and pid <> pg_backend_pid()"):
            try:
                backends[row["pid"]] = self._seconds(psutil.Process(row["pid"]))
            except psutil.Error:
                pass
        total = psutil.cpu_times()
        busy = sum(total) - total.idle - getattr(total, "iowait", 0.0)
        reaped = self.postmaster.cpu_times()
        return {"app": self._seconds(self.app), "postgres": backends,
                "pg_exited": reaped.children_user + reaped.children_system,
                "client": self._seconds(self.me), "machine": busy}

    @staticmethod
    def per_request(before: dict[str, Any], after: dict[str, Any],
                    requests: int) -> dict[str, float]:
        """Milliseconds of CPU per request between two snapshots."""
        spent = {k: after[k] - before[k] for k in ("app", "pg_exited", "client", "machine")}
        spent["postgres"] = sum(t - before["postgres"].get(pid, 0.0)
                                for pid, t in after["postgres"].items())
        return {k: v * 1000 / max(requests, 1) for k, v in spent.items()}


async def run_phases(specs_: list[Spec], app_url: str, password: str, concurrency: int,
                     args: argparse.Namespace, cpu: Cpu) -> dict[str, Result]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results: dict[str, Result] = {}
    async with httpx.AsyncClient(base_url=app_url, limits=limits, timeout=30) as client:
        auth: dict[str, dict[str, str]] = {}
        for spec in specs_:
            if spec.user not in auth:
                auth[spec.user] = {"Authorization":
                                   f"Bearer {await token(client, spec.user, password)}"}
        print(f"concurrency {concurrency}", flush=True)
        for spec in specs_:
            headers = auth[spec.user]
            params = spec.params

            async def send(i: int, p: list[dict[str, Any]] = params,
                           s: Spec = spec, h: dict[str, str] = headers) -> httpx.Response:
                return await client.get(s.path, params=p[i % len(p)], headers=h)

            before, began = await cpu.snapshot(), time.perf_counter()
            phase = await measure(f"{spec.key}, {spec.user}", send, 200, concurrency,
                                  args.duration, args.requests)
            after, wall = await cpu.snapshot(), time.perf_counter() - began
            sent = len(phase.latencies) + phase.errors + 2 * concurrency
            results[spec.key] = Result(phase, Cpu.per_request(before, after, sent), wall)
    return results


async def probe(specs_: list[Spec], app_url: str, password: str, pages: int) -> None:
    """Fill the cursor pages of `next_page`, and check each phase's first page: status,
    item count, whether there is a next page."""
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:
        tokens: dict[str, str] = {}
        for spec in specs_:
            if spec.user not in tokens:
                tokens[spec.user] = await token(client, spec.user, password)
            headers = {"Authorization": f"Bearer {tokens[spec.user]}"}
            if spec.key == "next_page":
                cursor = None
                for _ in range(pages + 1):
                    response = await client.get(spec.path, params={
                        "limit": 50, **({"cursor": cursor} if cursor else {})}, headers=headers)
                    response.raise_for_status()
                    cursor = response.json()["next_cursor"]
                    if cursor is None:
                        break
                    spec.params.append({"limit": 50, "cursor": cursor})
                if not spec.params:
                    raise SystemExit("the case list has a single page: load more --cases")
            response = await client.get(spec.path, params=spec.params[0], headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{spec.key}: {response.status_code} {response.text[:300]}")
            body = response.json()
            spec.items, spec.more = len(body["items"]), body["next_cursor"] is not None
            overdue = sum(1 for item in body["items"] if item.get("overdue"))
            more = " (and a next page)" if spec.more else ""
            late = f", {overdue} overdue" if spec.path.endswith("/escalations") else ""
            print(f"  {spec.key:<18} {spec.items:>3} items{more}{late}", flush=True)


# --- EXPLAIN -------------------------------------------------------------------------


@dataclass
class Explained:
    statement: str
    parameters: tuple
    plan: list[str]

    @property
    def execution_ms(self) -> float:
        return next((float(line.split(":")[1].split()[0]) for line in reversed(self.plan)
                     if line.startswith("Execution Time")), float("nan"))

    @property
    def planning_ms(self) -> float:
        return next((float(line.split(":")[1].split()[0]) for line in self.plan
                     if line.startswith("Planning Time")), float("nan"))


async def explain(url: str, specs_: list[Spec]) -> dict[str, list[Explained]]:
    """EXPLAIN (ANALYZE, BUFFERS) every statement the app's service functions send for each
    phase's first parameters (what the endpoint calls: the queue or the case search), on
    one connection of the app's own engine."""
    db = Database(url, pool_size=1)
    out: dict[str, list[Explained]] = {}
    captured: list[tuple[str, tuple]] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:
        captured.append((statement, tuple(parameters or ())))

    try:
        for spec in specs_:
            params = spec.params[0]
            async with db.sessionmaker() as session, session.begin():
                user_id = await session.scalar(select(User.id).where(User.username == spec.user))
                principal = await load_principal(session, f"user:{user_id}")
                captured.clear()
                event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
                try:
                    if spec.path.endswith("/escalations"):
                        await escalations_service.queue(
                            session, principal, status=params.get("status"),
                            include_descendants=params.get("include_descendants") == "true",
                            limit=params.get("limit", 50), cursor=None)
                    else:
                        await cases_service.search_cases(
                            session, principal, q=params.get("q"), status=params.get("status"),
                            priority=params.get("priority"), unit_id=None,
                            limit=params.get("limit", 50), cursor=params.get("cursor"))
                finally:
                    event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
                raw = (await (await session.connection()).get_raw_connection()).driver_connection
                out[spec.key] = []
                for statement, parameters in list(captured):
                    plan = [r[0] for r in await raw.fetch(
                        f"explain (analyze, buffers) {statement}", *parameters)]
                    out[spec.key].append(Explained(statement, parameters, plan))
    finally:
        await db.dispose()
    return out


def main_statement(explained: list[Explained]) -> Explained:
    return max(explained, key=lambda e: e.execution_ms)


def plan_summary(e: Explained, lines: int = 14) -> str:
    """The top of the plan, without the buffer lines, and its timings."""
    kept = [line for line in e.plan if not line.strip().startswith(("Buffers:", "I/O Timings"))]
    body = kept[:lines] + (["  …"] if len(kept) > lines + 2 else [])
    timing = [line for line in kept[-3:] if line.startswith(("Planning Time", "Execution Time",
                                                             "JIT"))]
    return "\n".join(body + ([] if kept[-2:] == timing[-2:] else timing))


# --- report --------------------------------------------------------------------------


def verdict(ms: float) -> str:
    return "yes" if ms <= TARGET_P95_MS else "**no**"


def report(args: argparse.Namespace, about: dict[str, str], facts: Facts,
           loaded: dict[str, float] | None, specs_: list[Spec],
           runs: dict[int, dict[str, Result]], plans: dict[str, list[Explained]]) -> str:
    f = facts
    lines = [f"# crossintel bench, cases — {about['date']}", ""]
    lines += [f"- {k}: {v}" for k, v in about.items() if k != "date"]
    lines += [
        f"- cases: {f['cases']:,} " + (
            f"(generated and COPYed with {loaded['escalations']:,.0f} escalations, "
            f"{loaded['custodians']:,.0f} custody units, {loaded['members']:,.0f} team rows and "
            f"{loaded['events']:,.0f} timeline events in {loaded['seconds']:.0f} s)"
            if loaded else f"(reused database {args.database})"),
        "- by status: " + ", ".join(f"{k} {v:,}" for k, v in f["by_status"].items())
        + "; custody: " + ", ".join(f"{k} {v:,}" for k, v in f["cases_by_unit"].items()) + " …",
        "- escalations: " + ", ".join(f"{k} {v:,}" for k, v in f["escalations"].items())
        + f"; pending overdue {f['overdue']:,} ({f['overdue'] / max(1, f['pending']):.0%}); "
        "pending by priority: " + ", ".join(f"{k} {v:,}"
                                            for k, v in f["pending_by_priority"].items()),
        "- pending by target: " + ", ".join(f"{k} {v:,}"
                                            for k, v in f["pending_by_target"].items()) + " …",
        f"- cross13.chef sees {f['cross13_visible']:,} cases ({f['cross13_team_only']:,} team "
        f"rows of his own); q={facts.reference_prefix} matches {f['reference_matches']:,} of "
        f"them, q={TITLE_WORD} {f['word_matches']:,}, escalated and urgent "
        f"{f['cross13_escalated_urgent']:,}",
        f"- each phase ≤ {args.duration:g} s and ≤ {args.requests:,} requests, after "
        "2 × concurrency warm-up requests; closed loop (each client sends its next request "
        "when answered); client, app (one uvicorn worker) and PostgreSQL share the machine",
        "",
        f"Target: p95 ≤ {TARGET_P95_MS:g} ms.",
        "",
    ]
    levels = sorted(runs, reverse=True)
    head = "| phase | persona | items |"
    rule = "|---|---|---|"
    for c in levels:
        head += f" C={c} req/s | C={c} p50 / p95 / p99 ms | C={c} met |"
        rule += "---|---|---|"
    lines += [head, rule]
    for spec in specs_:
        row = f"| {spec.title} | {spec.user} | {spec.items}{'+' if spec.more else ''} |"
        for c in levels:
            p = runs[c][spec.key].phase
            row += f" {p.rate:,.0f} | {p.triple()} | {verdict(p.pct(95))} |"
        lines.append(row)
    lines += ["", "CPU per request, ms (warm-up included): the app process; the PostgreSQL "
              "backends of the bench database; PostgreSQL processes that exited meanwhile "
              "(the parallel workers of a parallel plan, but also any other database's "
              "ended connections); this client; `other` is the rest of the machine's busy "
              "time (anything else running shows there):", "",
              "| phase | C | app | PostgreSQL | PostgreSQL, exited | client | other | "
              "machine busy |",
              "|---|---|---|---|---|---|---|---|"]
    for c in levels:
        for spec in specs_:
            r = runs[c][spec.key]
            cpu = r.cpu_ms
            other = (cpu["machine"] - cpu["app"] - cpu["postgres"] - cpu["pg_exited"]
                     - cpu["client"])
            busy = cpu["machine"] / 1000 * (len(r.phase.latencies) + r.phase.errors
                                            + 2 * c) / max(r.wall, 1e-9)
            lines.append(f"| {spec.key} | {c} | {cpu['app']:.1f} | {cpu['postgres']:.1f} | "
                         f"{cpu['pg_exited']:.1f} | {cpu['client']:.1f} | {other:.1f} | "
                         f"{busy:.2f} cores |")
    lines += ["", "| phase | C | requests | errors | seconds | req/s | p50 | p95 | p99 | max |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for c in levels:
        for spec in specs_:
            p = runs[c][spec.key].phase
            top = max(p.latencies, default=float("nan")) * 1000
            lines.append(f"| {spec.key} | {c} | {len(p.latencies)} | {p.errors} | "
                         f"{p.seconds:.1f} | {p.rate:.1f} | {p.pct(50):.1f} | {p.pct(95):.1f} | "
                         f"{p.pct(99):.1f} | {top:.1f} |")
    lines += plans_markdown(plans)
    return "\n".join(lines) + "\n"


def plans_markdown(plans: dict[str, list[Explained]]) -> list[str]:
    if not plans:
        return []
    lines = ["", "## SQL per phase (EXPLAIN ANALYZE of the service functions' statements)", "",
             "| phase | statements | SQL execution, ms (sum) | slowest statement, ms |",
             "|---|---|---|---|"]
    for key, explained in plans.items():
        total = sum(e.execution_ms for e in explained)
        lines.append(f"| {key} | {len(explained)} | {total:.2f} | "
                     f"{main_statement(explained).execution_ms:.2f} |")
    for key, explained in plans.items():
        lines += ["", f"### {key}", ""]
        for e in explained:
            lines += ["```sql", e.statement.strip(), f"-- parameters: {e.parameters}", "```",
                      "```", "\n".join(e.plan), "```"]
    return lines


# --- the run -------------------------------------------------------------------------


async def create_database(server_url: str) -> str:
    name = f"crossintel_bench_cases_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def print_plans(plans: dict[str, list[Explained]]) -> None:
    for key, explained in plans.items():
        total = sum(e.execution_ms for e in explained)
        slowest = main_statement(explained)
        print(f"\n=== {key}: {len(explained)} statements, {total:.2f} ms of SQL; slowest "
              f"{slowest.execution_ms:.2f} ms (planning {slowest.planning_ms:.2f} ms)")
        print(plan_summary(slowest))


async def bench(args: argparse.Namespace, work: Path) -> None:
    """The whole run; SIGTERM cancels it like Ctrl-C, through the same clean-up."""
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, asyncio.current_task().cancel)
    load_at_start = loadavg()
    server_url = os.environ.get("CROSSINTEL_BENCH_DATABASE_URL") or DEFAULT_SERVER
    if args.database:
        url = make_url(server_url).set(database=args.database).render_as_string(
            hide_password=False)
    else:
        url = await create_database(server_url)
    print(f"database {make_url(url).database} on {make_url(url).host or 'local socket'}",
          flush=True)
    process = None
    try:
        settings = Settings(database_url=url, data_dir=work)
        await migrate_async(url)
        loaded = None
        if not args.database:
            await load_demo_data(url, settings)
            loaded = await load_cases(url, settings, args.cases, args.pending, args.seed)
        facts = await gather_facts(url)
        print(f"{facts['cases']:,} cases, {facts['pending']:,} pending escalations "
              f"({facts['overdue']:,} overdue); cross13.chef sees {facts['cross13_visible']:,}",
              flush=True)
        specs_ = specs(facts)
        password = settings.demo_password.get_secret_value()
        port = free_port()
        env = {**os.environ, "CROSSINTEL_DATABASE_URL": url, "CROSSINTEL_DATA_DIR": str(work),
               "CROSSINTEL_ACCESS_TOKEN_TTL_SECONDS": "7200"}
        log = work / "app.log"
        process = start([sys.executable, "-m", "uvicorn", "--factory",
                         "bench.asgi_app:create_app", "--host", "127.0.0.1", "--port",
                         str(port), "--no-access-log", "--log-level", "warning"], env, log)
        app_url = f"http://127.0.0.1:{port}"
        await wait_ready(app_url, "/healthz", process, log)
        print("first pages:", flush=True)
        await probe(specs_, app_url, password, args.pages)
        if args.explain_only:
            print_plans(await explain(url, specs_))
            return
        about = machine(await pg_version(url))
        about["nproc"] = str(len(os.sched_getaffinity(0)))
        about["load average at start"] = load_at_start
        about["load average before measuring"] = loadavg()
        busy = os.getloadavg()[0]
        if busy > 0.5 * len(os.sched_getaffinity(0)):
            print(f"warning: load average {busy:.2f} before measuring: something else is "
                  "running, the figures will show it", flush=True)
        watcher = await asyncpg.connect(asyncpg_dsn(url))
        try:
            cpu = await Cpu.start(process.pid, watcher)
            runs = {args.concurrency: await run_phases(specs_, app_url, password,
                                                       args.concurrency, args, cpu)}
            if args.concurrency != 1:
                runs[1] = await run_phases(specs_, app_url, password, 1, args, cpu)
        finally:
            await watcher.close()
        about["load average at end"] = loadavg()
        rss = psutil.Process(process.pid).memory_info().rss
        about["app RSS after run"] = f"{rss / 2**20:.0f} MB"
        if process.poll() is not None:
            raise SystemExit(f"the app exited:\n{tail(log)}")
        stop(process)
        plans = await explain(url, specs_)
        print_plans(plans)
        text = report(args, about, facts, loaded, specs_, runs, plans)
        summary = text.split("\n## SQL per phase")[0]
        print("\n" + summary + f"\nwritten to {write_results(text, 'cases-')}")
    finally:
        if process is not None:
            stop(process)
        if args.keep or args.database:
            print(f"database kept: {url}")
        else:
            await drop_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases to bulk-load")
    parser.add_argument("--pending", type=int, default=10_000,
                        help="pending escalations among them")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=15, help="seconds per phase, at most")
    parser.add_argument("--requests", type=int, default=3000, help="requests per phase, at most")
    parser.add_argument("--pages", type=int, default=10,
                        help="next pages (by cursor) cycled through in the next_page phase")
    parser.add_argument("--seed", type=int, default=1, help="data generator seed")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    parser.add_argument("--database", metavar="NAME",
                        help="reuse a database kept by --keep (no load; never dropped)")
    parser.add_argument("--explain-only", action="store_true",
                        help="with --database: print the plans of every phase, measure nothing")
    args = parser.parse_args()
    if args.explain_only and not args.database:
        parser.error("--explain-only needs --database")
    if min(args.cases, args.concurrency, args.requests, args.pages) < 1 or args.pending < 0:
        parser.error("counts must be positive")

    with tempfile.TemporaryDirectory(prefix="crossintel-bench-cases-") as work:
        try:
            asyncio.run(bench(args, Path(work)))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted", file=sys.stderr)
            sys.exit(130)


if __name__ == "__main__":
    main()
