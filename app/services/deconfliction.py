"""Target deconfliction: blind hits between the holders of a selector.

Matching runs **inside the transaction that files the selector** (a record filed or
changed, an entity added to a case): the hits exist, and their notifications are sent,
exactly when the filing commits — never for a filing that rolled back, never seconds later.

A **holder** is one party's records — a unit and an agency, represented by its earliest
record holding the selector — or one case. Every selector filed is matched against every
other holder, whatever its visibility; each pair of holders makes one hit per selector
(`hits.uq_hits_pair`), carrying only the selector type, its value (shown masked), and for
each side its unit, agency, first filing date and kind of item. A selector held by more
than `deconfliction_common_holders` parties is marked common and raises no more hits;
admins exclude others (switchboards, hotlines, test numbers). Persons born the same day
with similar names (RapidFuzz, `person_similarity`) make `possible` hits.

Who sees a hit, and what a request for access opens, is decided in the policy
(`hit_filter`, `check_decides_access`).
"""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import (
    Select,
    String,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    delete,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, distinct_on, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import policy
from app.auth.principal import Principal
from app.errors import conflict, invalid_field, not_found
from app.models import (
    AccessRequest,
    Case,
    CaseMember,
    CaseSelector,
    CommonSelector,
    Hit,
    Record,
    RecordGrant,
    RecordSelector,
    SelectorExclusion,
    Unit,
    User,
)
from app.pagination import decode_cursor, page
from app.schemas.deconfliction import (
    AccessRequestOut,
    ExclusionOut,
    HitOut,
    HitSide,
    OtherSide,
)
from app.services import audit, notifications
from app.services.entities import SELECTOR_TYPES, fold, mask, search_selectors
from app.settings import Settings

# A name alone says too little to bring two files together; a name with a birth date does.
HIT_TYPES = frozenset(SELECTOR_TYPES) - {"person_name"}
# The types `search_selectors` recognises in free text.
SEARCHABLE_TYPES = frozenset(
    {"phone", "iban", "container", "imo", "siren", "email", "vin", "plate", "crypto_wallet"}
)
TYPE_LABELS = {
    "person": "personne",
    "organisation": "organisation",
    "siren": "SIREN",
    "phone": "téléphone",
    "email": "e-mail",
    "plate": "immatriculation",
    "vin": "VIN",
    "imo": "navire (IMO)",
    "container": "conteneur",
    "iban": "IBAN",
    "bic": "BIC",
    "crypto_wallet": "portefeuille crypto",
    "identity_document": "pièce d'identité",
    "address": "adresse",
}


@dataclass(frozen=True)
class Holding:
    """One holder of one selector value: a party's earliest record, or a case."""

    key: str
    value: str
    record_id: uuid.UUID | None
    case_id: uuid.UUID | None
    unit_id: uuid.UUID
    agency: str | None
    first_at: datetime


def party_key(unit_id: uuid.UUID, agency: str) -> str:
    return f"party:{unit_id}:{agency}"


def _record_holdings(type_filter: Any) -> Select:
    """Per selector value and party, the earliest live record holding it."""
    return (
        select(
            RecordSelector.type,
            RecordSelector.value,
            Record.id.label("record_id"),
            null().cast(Uuid).label("case_id"),
            Record.unit_id,
            Record.author_agency.label("agency"),
            Record.created_at.label("first_at"),
        )
        .join(Record, Record.id == RecordSelector.record_id)
        .where(type_filter, Record.purged_at.is_(None))
        .ext(
            distinct_on(
                RecordSelector.type, RecordSelector.value, Record.unit_id, Record.author_agency
            )
        )
        .order_by(
            RecordSelector.type,
            RecordSelector.value,
            Record.unit_id,
            Record.author_agency,
            Record.created_at,
            Record.id,
        )
    )


def _case_holdings(type_filter: Any) -> Select:
    """Per selector value, each case holding it and when it first did."""
    return (
        select(
            CaseSelector.type,
            CaseSelector.value,
            null().cast(Uuid).label("record_id"),
            Case.id.label("case_id"),
            Case.unit_id,
            null().cast(String).label("agency"),
            func.min(CaseSelector.created_at).label("first_at"),
        )
        .join(Case, Case.id == CaseSelector.case_id)
        .where(type_filter)
        .group_by(CaseSelector.type, CaseSelector.value, Case.id)
    )


def _holding(row: Any) -> Holding:
    key = f"case:{row.case_id}" if row.case_id else party_key(row.unit_id, row.agency)
    return Holding(
        key, row.value, row.record_id, row.case_id, row.unit_id, row.agency, row.first_at
    )


def _holdings_of(condition_r: Any, condition_c: Any) -> Select:
    """Holders among records and cases, each side with its own condition."""
    return union_all(
        _record_holdings(condition_r).subquery().select(),
        _case_holdings(condition_c).subquery().select(),
    )


async def _holdings(session: AsyncSession, query: Any, params: dict) -> list[Holding]:
    return [_holding(row) for row in await session.execute(query, params)]


def _not_blocked(type_col: Any, value_col: Any) -> Any:
    """Selectors that may raise hits: neither excluded by admins nor common."""
    return and_(
        ~exists().where(CommonSelector.type == type_col, CommonSelector.value == value_col),
        ~exists().where(SelectorExclusion.type == type_col, SelectorExclusion.value == value_col),
    )


def _wanted() -> Select:
    """The selectors sought, from two arrays: a statement whose text does not depend on
    how many there are, so it is prepared once per connection (see `_LOCK`)."""
    pairs = (
        func.unnest(bindparam("types", type_=ARRAY(String)), bindparam("values", type_=ARRAY(Text)))
        .table_valued("type", "value")
        .render_derived(name="wanted")
    )
    return select(pairs.c.type, pairs.c.value)


# Built once: constructing these statements costs more Python time than running them.
_EXACT = _holdings_of(
    and_(
        tuple_(RecordSelector.type, RecordSelector.value).in_(_wanted()),
        _not_blocked(RecordSelector.type, RecordSelector.value),
    ),
    and_(
        tuple_(CaseSelector.type, CaseSelector.value).in_(_wanted()),
        _not_blocked(CaseSelector.type, CaseSelector.value),
    ),
)
# Persons born on given days. Constants, not parameters, for the type and the expression:
# under this transaction's generic plans a parameter would hide that they are the
# birth-date indexes' expression; the dates are written into the statement (ISO dates the
# entity schema made) so that the plan knows how few persons share them.
_PERSON, _BAR, _THIRD = literal_column("'person'"), literal_column("'|'"), literal_column("3")
_BORN = _holdings_of(
    and_(
        RecordSelector.type == _PERSON,
        func.split_part(RecordSelector.value, _BAR, _THIRD).in_(
            bindparam("dates", type_=String, expanding=True, literal_execute=True)
        ),
        _not_blocked(RecordSelector.type, RecordSelector.value),
    ),
    and_(
        CaseSelector.type == _PERSON,
        func.split_part(CaseSelector.value, _BAR, _THIRD).in_(
            bindparam("dates", type_=String, expanding=True, literal_execute=True)
        ),
        _not_blocked(CaseSelector.type, CaseSelector.value),
    ),
)


async def match(
    session: AsyncSession,
    settings: Settings,
    *,
    key: str,
    pairs: list[tuple[str, str]],
) -> list[Hit]:
    """Match the selectors `pairs` just filed by the holder `key` against every other
    holder; create the new hits and notify both sides. Returns the new hits.

    A fixed number of statements whatever the number of selectors and hits: the holders
    (excluded and common selectors left out), persons born the same day (only for persons
    with a birth date), then — only when there are candidates — one insert of the hits
    and the batched notifications."""
    wanted = sorted({(t, v) for t, v in pairs if t in HIT_TYPES})
    if not wanted:
        return []
    await _lock_selectors(session, wanted)
    candidates: list[tuple[str, str, Holding, Holding]] = []
    holdings = await _holdings(
        session, _EXACT, {"types": [t for t, _ in wanted], "values": [v for _, v in wanted]}
    )
    if holdings:
        by_selector: dict[tuple[str, str], dict[str, Holding]] = {}
        for type_, holding in _typed(holdings, wanted):
            by_selector.setdefault((type_, holding.value), {})[holding.key] = holding
        for (type_, value), holders in by_selector.items():
            mine = holders.get(key)
            if mine is None:
                continue
            if len(holders) > settings.deconfliction_common_holders:
                await session.execute(
                    insert(CommonSelector)
                    .values(type=type_, value=value, holders=len(holders))
                    .on_conflict_do_nothing()
                )
                continue
            candidates += [("exact", type_, mine, o) for o in holders.values() if o.key != key]
    persons = [v for t, v in wanted if t == "person"]
    if persons:
        candidates += await _possible_persons(session, settings, key, persons)
    created = await _create_hits(session, candidates)
    if created:
        await _announce(session, created)
    return created


# Filings of one selector are matched one after the other: a transaction-level advisory
# lock per selector (in a sorted order, so two filings never wait on each other in a
# cycle), taken before the holders are read. Without it two parties filing the same
# selector at the same moment would each miss the other's uncommitted row, and never meet.
#
# The same statement makes the rest of this transaction reuse generic plans (the
# connections' default is force_custom_plan, for the sake of text search): the matching
# statements are equality lookups by index whose planning (2–3 ms, over the records
# table's many indexes) costs several times their execution (0.3–0.5 ms), and whose
# generic plans are those lookups. It also keeps them from parallel plans, which a
# generic plan's blind estimates would choose and whose workers take longer to start
# (3–5 ms) than the lookup takes.
LOCK_SPACE = 0x4849  # "HI": the advisory-lock namespace of deconfliction
_LOCK = text(
    "select set_config('plan_cache_mode', 'force_generic_plan', true), "
    "set_config('max_parallel_workers_per_gather', '0', true), "
    "(select count(pg_advisory_xact_lock(:space, k)) from "
    "(select k from unnest(cast(:keys as int[])) with ordinality as t(k, n) order by n) s)"
)


def lock_key(*parts: str) -> int:
    """A stable signed 32-bit key for an advisory lock."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


async def _lock_selectors(session: AsyncSession, pairs: list[tuple[str, str]]) -> None:
    keys = sorted(
        {lock_key(t, v) for t, v in pairs}
        | {lock_key("person", _birth_date(v)) for t, v in pairs if t == "person"}
    )
    await session.execute(_LOCK, {"space": LOCK_SPACE, "keys": keys})


def _typed(holdings: list[Holding], wanted: list[tuple[str, str]]):
    """Holdings with their selector type (a value may exist under several types)."""
    types_of: dict[str, list[str]] = {}
    for t, v in wanted:
        types_of.setdefault(v, []).append(t)
    for h in holdings:
        for t in types_of.get(h.value, []):
            yield t, h


def _birth_date(value: str) -> str:
    return value.rsplit("|", 1)[-1]


def _name(value: str) -> str:
    return value.rsplit("|", 1)[0].replace("|", " ")


async def _possible_persons(
    session: AsyncSession, settings: Settings, key: str, persons: list[str]
) -> list[tuple[str, str, Holding, Holding]]:
    """Candidates for `possible` hits: other holders of a person born the same day whose
    name is similar (not equal: equal names make the exact hit). They never grant
    anything."""
    dates = sorted({_birth_date(p) for p in persons})
    holdings = await _holdings(session, _BORN, {"dates": dates})
    mine = {h.value: h for h in holdings if h.key == key and h.value in persons}
    found = []
    for other in holdings:
        if other.key == key or other.value in persons:
            continue
        for value, own in mine.items():
            if _birth_date(value) != _birth_date(other.value):
                continue
            if (
                fuzz.token_sort_ratio(_name(value), _name(other.value))
                >= settings.person_similarity
            ):
                found.append(("possible", "person", own, other))
    return found


async def _create_hits(
    session: AsyncSession, candidates: list[tuple[str, str, Holding, Holding]]
) -> list[Hit]:
    """Insert the hits between holders that do not exist yet, in one statement; returns
    those created."""
    rows = []
    for kind, type_, one, two in candidates:
        a, b = sorted((one, two), key=lambda h: h.key)
        row = {"id": uuid.uuid4(), "kind": kind, "selector_type": type_}
        for prefix, side in (("a", a), ("b", b)):
            row.update(
                {
                    f"{prefix}_key": side.key,
                    f"{prefix}_value": side.value,
                    f"{prefix}_record_id": side.record_id,
                    f"{prefix}_case_id": side.case_id,
                    f"{prefix}_unit_id": side.unit_id,
                    f"{prefix}_agency": side.agency,
                    f"{prefix}_first_at": side.first_at,
                }
            )
        rows.append(row)
    if not rows:
        return []
    created = list(
        (await session.scalars(insert(Hit).on_conflict_do_nothing().returning(Hit), rows)).all()
    )
    for hit in created:
        audit.also(
            session, "hit.create", "hit", hit.id, kind=hit.kind, selector_type=hit.selector_type
        )
    return created


# --- who hears of a hit, and what they are told ------------------------------------------


@dataclass
class UnitContacts:
    """What the announcements need of the units involved, read once."""

    codes: dict[uuid.UUID, str]
    supervisors: dict[uuid.UUID, list[tuple[uuid.UUID, str, str]]]
    contacts: dict[uuid.UUID, list[str]]


_UNITS = text("""
    with recursive chain as (
        select id, code, parent_id from units where id = any(cast(:ids as uuid[]))
        union
        select u.id, u.code, u.parent_id from units u join chain c on u.id = c.parent_id
    )
    select c.id, c.code, c.parent_id,
           coalesce(json_agg(json_build_array(us.id, us.display_name, us.agency)
                             order by us.display_name)
                    filter (where us.id is not null), '[]') as supervisors
    from chain c
    left join memberships m on m.unit_id = c.id and m.role = 'supervisor'
    left join users us on us.id = m.user_id and us.is_active
    group by c.id, c.code, c.parent_id
""")


async def unit_contacts(session: AsyncSession, unit_ids: set[uuid.UUID]) -> UnitContacts:
    """Codes, active supervisors and contacts of units (and of the units above them), in
    one statement; a unit without supervisors gives those of the nearest unit above as
    contact."""
    codes, parents, supervisors = {}, {}, {}
    for row in await session.execute(_UNITS, {"ids": list(unit_ids)}):
        codes[row.id], parents[row.id] = row.code, row.parent_id
        found = json.loads(row.supervisors) if isinstance(row.supervisors, str) else row.supervisors
        supervisors[row.id] = [(uuid.UUID(i), name, agency) for i, name, agency in found]
    contacts = {}
    for unit_id in unit_ids:
        candidate = unit_id
        while candidate is not None and not supervisors.get(candidate):
            candidate = parents.get(candidate)
        names = [name for _, name, _ in supervisors.get(candidate, [])]
        if candidate != unit_id:
            names = [f"{n} ({codes[candidate]})" for n in names]
        contacts[unit_id] = names
    return UnitContacts(codes, supervisors, contacts)


# Who authored each side's item (built once, like the matching statements).
_ITEMS = union_all(
    select(Record.id, Record.scope, Record.author_agency, Record.author_user_id).where(
        Record.id == any_(bindparam("records", type_=ARRAY(Uuid)))
    ),
    select(Case.id, literal("case"), null().cast(String), Case.lead_user_id).where(
        Case.id == any_(bindparam("cases", type_=ARRAY(Uuid)))
    ),
)


async def _audiences(
    session: AsyncSession, hits: list[Hit], units: UnitContacts
) -> dict[tuple[uuid.UUID, str], list[uuid.UUID]]:
    """Who on each side of each hit hears of it: the unit's supervisors and the item's
    author (or the case's lead) — only those who see that side's item (an `agency`
    record's hit is told to its own agency only)."""
    record_ids = list({r for h in hits for r in (h.a_record_id, h.b_record_id) if r})
    case_ids = list({c for h in hits for c in (h.a_case_id, h.b_case_id) if c})
    records, leads = {}, {}
    rows = await session.execute(_ITEMS, {"records": record_ids, "cases": case_ids})
    for item_id, scope, agency, person in rows:
        if scope == "case":
            leads[item_id] = person
        else:
            records[item_id] = (scope, agency, person)
    out = {}
    for hit in hits:
        for side in ("a", "b"):
            supervisors = units.supervisors.get(getattr(hit, f"{side}_unit_id"), [])
            record_id = getattr(hit, f"{side}_record_id")
            if record_id is not None:
                scope, agency, author = records[record_id]
                told = [u for u, _, a in supervisors if policy.unit_member_sees(a, scope, agency)]
                told += [author] if author else []
            else:
                told = [u for u, _, _ in supervisors] + [leads[getattr(hit, f"{side}_case_id")]]
            out[(hit.id, side)] = told
    return out


async def _announce(session: AsyncSession, hits: list[Hit]) -> None:
    """Tell each side about the other — masked value, unit, agency, contact, nothing of
    its content — in one batch."""
    units = await unit_contacts(session, {u for h in hits for u in (h.a_unit_id, h.b_unit_id)})
    audiences = await _audiences(session, hits, units)
    messages = []
    for hit in hits:
        label = TYPE_LABELS.get(hit.selector_type, hit.selector_type)
        possible = "possible " if hit.kind == "possible" else ""
        for side, other in (("a", "b"), ("b", "a")):
            other_unit = getattr(hit, f"{other}_unit_id")
            agency = getattr(hit, f"{other}_agency")
            holder = units.codes[other_unit] + (f" ({agency})" if agency else "")
            item = "un dossier" if getattr(hit, f"{other}_case_id") else "un renseignement"
            first = getattr(hit, f"{other}_first_at")
            names = ", ".join(units.contacts[other_unit]) or "—"
            shown = mask(hit.selector_type, getattr(hit, f"{side}_value"))
            messages.append(
                notifications.Message(
                    audiences[(hit.id, side)],
                    "deconfliction_hit",
                    f"Concordance {possible}({label} {shown}) avec {holder}",
                    f"{item} enregistré le {first:%d/%m/%Y}. Contact : {names}.",
                    hit_id=hit.id,
                )
            )
    await notifications.notify_many(session, messages)


# --- reading hits -------------------------------------------------------------------------


async def _hit_rows(
    session: AsyncSession, principal: Principal, query: Select, record_id: uuid.UUID | None = None
):
    """The hits of `query` the caller is a side of, with the sides it is on; with
    `record_id`, only the sides holding that record count."""
    sees_a, sees_b = await policy.hit_sides(session, principal)
    if record_id is not None:
        sees_a = and_(sees_a, Hit.a_record_id == record_id)
        sees_b = and_(sees_b, Hit.b_record_id == record_id)
    return await session.execute(
        query.add_columns(sees_a.label("sees_a"), sees_b.label("sees_b")).where(or_(sees_a, sees_b))
    )


def _my_side(principal: Principal, hit: Hit, sees_a: bool, sees_b: bool) -> tuple[str, str]:
    """(mine, other): the side the caller is on; when it sees both (two agencies of its
    own unit), the side of its own agency."""
    if sees_a and sees_b:
        own_b = hit.b_agency == principal.agency and hit.b_unit_id in principal.unit_ids
        own_a = hit.a_agency == principal.agency and hit.a_unit_id in principal.unit_ids
        return ("b", "a") if own_b and not own_a else ("a", "b")
    return ("a", "b") if sees_a else ("b", "a")


def hit_out(hit: Hit, sides: tuple[str, str], units: UnitContacts) -> HitOut:
    """A hit as the caller's side sees it: its own item, and of the other side only who
    holds it and whom to call."""
    mine, other = sides
    other_unit = getattr(hit, f"{other}_unit_id")
    return HitOut(
        id=hit.id,
        kind=hit.kind,
        selector_type=hit.selector_type,
        masked_value=mask(hit.selector_type, getattr(hit, f"{mine}_value")),
        mine=HitSide(
            item="case" if getattr(hit, f"{mine}_case_id") else "record",
            record_id=getattr(hit, f"{mine}_record_id"),
            case_id=getattr(hit, f"{mine}_case_id"),
            first_at=getattr(hit, f"{mine}_first_at"),
        ),
        other=OtherSide(
            item="case" if getattr(hit, f"{other}_case_id") else "record",
            unit_id=other_unit,
            unit_code=units.codes[other_unit],
            agency=getattr(hit, f"{other}_agency"),
            contact=units.contacts[other_unit],
            first_at=getattr(hit, f"{other}_first_at"),
        ),
        created_at=hit.created_at,
    )


async def list_hits(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str | None,
    selector_type: str | None,
    limit: int,
    cursor: str | None,
    record_id: uuid.UUID | None = None,
) -> tuple[list[HitOut], str | None]:
    """The hits on the caller's side, newest first; with `record_id`, those whose side
    the caller is on holds that record."""
    query = select(Hit)
    if kind:
        query = query.where(Hit.kind == kind)
    if selector_type:
        query = query.where(Hit.selector_type == selector_type)
    if cursor:
        position = decode_cursor(cursor, {"t": datetime, "i": uuid.UUID})
        query = query.where(tuple_(Hit.created_at, Hit.id) < tuple_(*position))
    rows = (
        await _hit_rows(
            session,
            principal,
            query.order_by(Hit.created_at.desc(), Hit.id.desc()).limit(limit + 1),
            record_id,
        )
    ).all()
    rows, next_cursor = page(rows, limit, lambda last: {"t": last[0].created_at, "i": last[0].id})
    units = await unit_contacts(
        session, {u for r in rows for u in (r[0].a_unit_id, r[0].b_unit_id)}
    )
    items = [hit_out(h, _my_side(principal, h, a, b), units) for h, a, b in rows]
    query_given = {"kind": kind, "selector_type": selector_type}
    if record_id is not None:
        query_given["record_id"] = str(record_id)
    audit.note(session, query=query_given, results=len(items))
    return items, next_cursor


async def _visible_hit(
    session: AsyncSession, principal: Principal, hit_id: uuid.UUID
) -> tuple[Hit, tuple[str, str]]:
    """A hit the caller is a side of (404 otherwise), with (mine, other)."""
    row = (await _hit_rows(session, principal, select(Hit).where(Hit.id == hit_id))).first()
    if row is None:
        raise not_found("hit")
    hit, sees_a, sees_b = row
    return hit, _my_side(principal, hit, sees_a, sees_b)


async def get_hit(session: AsyncSession, principal: Principal, hit_id: uuid.UUID) -> HitOut:
    hit, sides = await _visible_hit(session, principal, hit_id)
    return hit_out(hit, sides, await unit_contacts(session, {hit.a_unit_id, hit.b_unit_id}))


# --- access requests -----------------------------------------------------------------------


async def request_access(
    session: AsyncSession, principal: Principal, hit_id: uuid.UUID, justification: str
) -> AccessRequestOut:
    """Ask the other side's supervisors for access to their item of this hit."""
    hit, (mine, other) = await _visible_hit(session, principal, hit_id)
    requester_unit = getattr(hit, f"{mine}_unit_id")
    request = AccessRequest(
        hit_id=hit.id,
        requester_id=principal.id,
        requester_unit_id=requester_unit,
        record_id=getattr(hit, f"{other}_record_id"),
        case_id=getattr(hit, f"{other}_case_id"),
        target_unit_id=getattr(hit, f"{other}_unit_id"),
        justification=justification,
    )
    session.add(request)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # the partial unique index: one pending request per person
        if "uq_access_requests_pending" not in str(exc):
            raise
        raise conflict(
            "access_request_pending", "You already have a pending request on this hit."
        ) from exc
    requester_code = await session.scalar(select(Unit.code).where(Unit.id == requester_unit))
    item = "dossier" if request.case_id else "renseignement"
    shown = mask(hit.selector_type, getattr(hit, f"{other}_value"))
    target = await _target_audience(session, hit, other)
    await notifications.notify(
        session,
        target,
        "access_requested",
        f"Demande d'accès de {requester_code} à votre {item} (concordance {shown})",
        f"{principal.name} ({principal.agency}) : {justification}",
        hit_id=hit.id,
    )
    audit.note(
        session, access_request_id=str(request.id), target_unit_id=str(request.target_unit_id)
    )
    return access_request_out(request, requester_code)


async def _target_audience(session: AsyncSession, hit: Hit, side: str) -> list[uuid.UUID]:
    """Those who decide on one side's item: its unit's supervisors who see it."""
    units = await unit_contacts(session, {getattr(hit, f"{side}_unit_id")})
    audience = (await _audiences(session, [hit], units))[(hit.id, side)]
    supervisors = {u for u, _, _ in units.supervisors.get(getattr(hit, f"{side}_unit_id"), [])}
    return [uid for uid in audience if uid in supervisors]


async def decide_access(
    session: AsyncSession,
    principal: Principal,
    request_id: uuid.UUID,
    decision: str,
    expires_at: datetime | None,
    note: str,
) -> AccessRequestOut:
    """The holder's supervisors approve (a grant on that record or case only, until
    `expires_at`; for an H2 record this approval is the originating unit's consent) or
    decline."""
    request = await session.scalar(
        select(AccessRequest).where(AccessRequest.id == request_id).with_for_update()
    )
    if request is None:
        raise not_found("access request")
    await policy.check_decides_access(session, principal, request)
    if request.status != "pending":
        raise conflict("already_decided", f"This request was already {request.status}.")
    now = datetime.now(UTC)
    if decision == "approve":
        if expires_at is None:
            raise invalid_field(["body", "expires_at"], "required to approve")
        if expires_at <= now:
            raise invalid_field(["body", "expires_at"], "must be in the future")
        await _grant(session, request, expires_at)
    request.status = "approved" if decision == "approve" else "declined"
    request.decided_by, request.decided_at, request.decision_note = principal.name, now, note
    request.expires_at = expires_at if decision == "approve" else None
    await session.flush()
    verdict = "accordée" if decision == "approve" else "refusée"
    until = f" jusqu'au {expires_at:%d/%m/%Y %H:%M}" if decision == "approve" else ""
    await notifications.notify(
        session,
        [request.requester_id],
        "access_decided",
        f"Demande d'accès {verdict}{until}",
        note,
        hit_id=request.hit_id,
        case_id=request.case_id if decision == "approve" else None,
    )
    audit.note(session, decision=decision, expires_at=expires_at, note=note)
    code = await session.scalar(select(Unit.code).where(Unit.id == request.requester_unit_id))
    return access_request_out(request, code)


async def _grant(session: AsyncSession, request: AccessRequest, expires_at: datetime) -> None:
    """Open the requested item to the requester until `expires_at`: a consented grant on
    the record (never across agencies for an `agency` record), or a place on the case."""
    if request.record_id is not None:
        record = await session.get(Record, request.record_id)
        requester_agency = await session.scalar(
            select(User.agency).where(User.id == request.requester_id)
        )
        if record.scope == "agency" and record.author_agency != requester_agency:
            raise conflict(
                "agency_bound",
                "This record is restricted to its author's agency: no grant can open it to "
                "another agency. Share what can be shared in a record of wider scope.",
            )
        session.add(
            RecordGrant(
                record_id=record.id,
                user_id=request.requester_id,
                reason="access_request",
                source_id=request.id,
                consented=True,
                expires_at=expires_at,
            )
        )
    else:
        await _observe_case(session, request, expires_at)
    audit.also(
        session,
        "grant.create",
        "case" if request.case_id else "record",
        request.case_id or request.record_id,
        user_id=str(request.requester_id),
        reason="access_request",
        expires_at=expires_at,
    )


async def _observe_case(session: AsyncSession, request: AccessRequest, expires_at: datetime):
    """The requester observes the case (and sees what its team sees) until `expires_at`."""
    from app.services.cases import sync_grants  # cases imports this module: resolved late

    await session.execute(
        insert(CaseMember)
        .values(
            case_id=request.case_id,
            user_id=request.requester_id,
            role="observer",
            expires_at=expires_at,
            added_by="access_request",
        )
        .on_conflict_do_update(
            index_elements=["case_id", "user_id"],
            set_={"expires_at": expires_at},
            where=CaseMember.role == "observer",
        )
    )
    await sync_grants(session, await session.get(Case, request.case_id))


async def list_access_requests(
    session: AsyncSession, principal: Principal, *, status: str | None, limit: int
) -> list[AccessRequestOut]:
    """The caller's own requests and those addressed to the units it supervises."""
    query = select(AccessRequest, Unit.code).join(Unit, Unit.id == AccessRequest.requester_unit_id)
    query = query.where(await policy.access_request_filter(session, principal))
    if status:
        query = query.where(AccessRequest.status == status)
    rows = await session.execute(query.order_by(AccessRequest.created_at.desc()).limit(limit))
    items = [access_request_out(r, code) for r, code in rows]
    audit.note(session, results=len(items))
    return items


def access_request_out(request: AccessRequest, requester_unit_code: str) -> AccessRequestOut:
    return AccessRequestOut(
        id=request.id,
        hit_id=request.hit_id,
        requester_id=request.requester_id,
        requester_unit_code=requester_unit_code,
        item="case" if request.case_id else "record",
        record_id=request.record_id,
        case_id=request.case_id,
        target_unit_id=request.target_unit_id,
        justification=request.justification,
        status=request.status,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        decision_note=request.decision_note,
        expires_at=request.expires_at,
        created_at=request.created_at,
    )


# --- exclusions (admins) -------------------------------------------------------------------


async def list_exclusions(session: AsyncSession, principal: Principal) -> list[ExclusionOut]:
    policy.check_admin(principal)
    rows = await session.scalars(select(SelectorExclusion).order_by(SelectorExclusion.created_at))
    return [ExclusionOut.model_validate(r) for r in rows]


def _normalised(type_: str, raw: str) -> str:
    """An excluded value as filings store it: identifiers normalised as in searches,
    organisations folded, other types (persons, addresses…) as given, in stored form."""
    value = next((v for t, v in search_selectors(raw) if t == type_), None)
    if value is not None:
        return value
    if type_ == "organisation":
        return fold(raw)
    if type_ in SEARCHABLE_TYPES:
        raise invalid_field(["body", "value"], f"not a valid {type_}")
    return raw.strip()


async def add_exclusion(
    session: AsyncSession, principal: Principal, type_: str, raw: str, reason: str
) -> SelectorExclusion:
    """Keep a selector from raising hits (admins)."""
    policy.check_admin(principal)
    value = _normalised(type_, raw)
    exclusion = SelectorExclusion(type=type_, value=value, reason=reason, added_by=principal.name)
    session.add(exclusion)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if "uq_selector_exclusions" not in str(exc):
            raise
        raise conflict("exclusion_exists", "This selector is already excluded.") from exc
    audit.note(session, object_id=exclusion.id, selector_type=type_, reason=reason)
    return exclusion


async def remove_exclusion(
    session: AsyncSession, principal: Principal, exclusion_id: uuid.UUID
) -> None:
    policy.check_admin(principal)
    result = await session.execute(
        delete(SelectorExclusion).where(SelectorExclusion.id == exclusion_id)
    )
    if result.rowcount == 0:
        raise not_found("exclusion")
