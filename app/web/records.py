"""Pages of the web client: records — the filing form, the record's page (with its
attachments, history, cases and deconfliction hits), and search.

The filing form works without JavaScript: entity rows are added and removed by submit
buttons (`action=add_entity`, `action=remove_entity:<i>`) that send the form back with
everything typed kept; crossintel.js does the same in place.
"""

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile

from app.auth import policy
from app.auth.principal import Principal
from app.db import SessionDep
from app.downloads import attachment_response
from app.errors import Problem
from app.schemas.records import DrugType, HandlingCode, RecordCreate, Reliability
from app.services import audit
from app.services import cases as cases_service
from app.services import deconfliction as deconfliction_service
from app.services import records as records_service
from app.services import units as units_service
from app.storage import FileStore
from app.web import pages
from app.web.session import WebPrincipalDep

router = APIRouter()

# --- entities: kinds and fields as the form shows them ----------------------------------------

ENTITY_KINDS = pages.ENTITY_KINDS
COUNTRY_HINT = "Code pays à deux lettres (FR, ES, MA…)."


@dataclass(frozen=True)
class EntityField:
    """One input of an entity row: `kind` is text, date, select or list (comma-separated)."""

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    hint: str | None = None
    options: dict[str, str] = field(default_factory=dict)


ENTITY_FIELDS: dict[str, tuple[EntityField, ...]] = {
    "person": (
        EntityField("surname", "Nom", required=True),
        EntityField("given_names", "Prénoms"),
        EntityField("aliases", "Alias", "list", hint="Séparés par des virgules."),
        EntityField("birth_date", "Date de naissance", "date"),
        EntityField("nationality", "Nationalité", hint=COUNTRY_HINT),
    ),
    "organisation": (
        EntityField("name", "Nom", required=True),
        EntityField(
            "org_kind",
            "Nature",
            "select",
            options={
                "company": "Société",
                "association": "Association",
                "criminal_group": "Groupe criminel",
                "public_body": "Organisme public",
                "other": "Autre",
            },
        ),
        EntityField("siren", "SIREN", hint="9 chiffres."),
    ),
    "phone": (
        EntityField("number", "Numéro", required=True, hint="Ex. 06 12 34 56 78 ou +33…"),
        EntityField("region", "Pays du numéro", hint="FR par défaut. " + COUNTRY_HINT),
    ),
    "email": (EntityField("address", "Adresse électronique", required=True),),
    "vehicle": (
        EntityField("plate", "Immatriculation", hint="Immatriculation ou VIN (au moins l'un)."),
        EntityField("country", "Pays d'immatriculation", hint="FR par défaut."),
        EntityField("vin", "Numéro VIN"),
    ),
    "vessel": (
        EntityField("name", "Nom du navire"),
        EntityField("imo", "Numéro OMI (IMO)", required=True),
    ),
    "container": (
        EntityField("number", "Numéro de conteneur", required=True, hint="ISO 6346 : ABCU1234565."),
    ),
    "bank_account": (
        EntityField("iban", "IBAN", required=True),
        EntityField("bic", "BIC"),
    ),
    "crypto_wallet": (
        EntityField(
            "chain",
            "Chaîne",
            "select",
            required=True,
            options={
                "bitcoin": "Bitcoin",
                "ethereum": "Ethereum",
                "tron": "Tron",
                "monero": "Monero",
                "other": "Autre",
            },
        ),
        EntityField("address", "Adresse du portefeuille", required=True),
    ),
    "identity_document": (
        EntityField(
            "doc_kind",
            "Type de pièce",
            "select",
            required=True,
            options={
                "passport": "Passeport",
                "id_card": "Carte d'identité",
                "residence_permit": "Titre de séjour",
                "driving_licence": "Permis de conduire",
                "other": "Autre",
            },
        ),
        EntityField("number", "Numéro", required=True),
        EntityField("country", "Pays de délivrance", required=True, hint=COUNTRY_HINT),
    ),
    "address": (
        EntityField("line", "Voie", required=True, hint="Numéro et nom de la voie."),
        EntityField("postcode", "Code postal"),
        EntityField("commune", "Commune", required=True),
        EntityField("country", "Pays", hint="FR par défaut."),
    ),
}

# --- the filing form ---------------------------------------------------------------------------

RECORD_FIELDS = (
    "title",
    "narrative",
    "occurred_at",
    "commune",
    "departement",
    "source_reliability",
    "information_assessment",
    "handling_code",
    "handling_note",
    "marking",
    "scope",
    "unit_id",
    "tags",
)
# The fields that RecordCreate does not take as typed (`body` reads them).
READ = ("occurred_at", "commune", "departement", "tags")
DEFAULTS = {"handling_code": "H0", "marking": "NP", "scope": "unit"}
ENTITY_INPUT = re.compile(r"^entities-(\d+)-([a-z_]+)$")
# The form field showing an error the schema reports with a plain `value_error`.
VALUE_ERRORS = {
    "handling_note": "Obligatoire avec le code H3 : précisez les restrictions.",
    "marking": "Niveau classifié refusé : crossintel n'est pas habilité. Choisissez NP ou DR.",
}
SERVICE_ERRORS = {
    "unit_id": "Choisissez l'une de vos unités.",
    "marking": "Marquage au-dessus du niveau autorisé pour votre compte.",
}
ALLOWED_FILES = "PDF, images, audio, vidéo MP4 ou texte"
FIELD_LABELS = {
    "title": "Titre",
    "narrative": "Récit",
    "occurred_at": "Date et heure des faits",
    "commune": "Commune",
    "departement": "Département",
    "drug_types": "Produits",
    "source_reliability": "Fiabilité de la source",
    "information_assessment": "Appréciation de l'information",
    "handling_code": "Code de traitement",
    "handling_note": "Précisions (H3)",
    "marking": "Marquage",
    "scope": "Diffusion",
    "unit_id": "Unité d'origine",
    "tags": "Mots-clés",
    "attachments": "Pièces jointes",
}
# Where the error summary's link to a group of radios or boxes leads: its first input.
GROUP_ANCHORS = {
    "drug_types": "drug_types-herbal_cannabis",
    "source_reliability": "source_reliability-A",
    "information_assessment": "information_assessment-1",
    "handling_code": "handling_code-H0",
    "marking": "marking-NP",
    "scope": "scope-agency",
}
ENTITY_ERROR = re.compile(r"^entities-(\d+)(?:-([a-z_]+))?$")


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@dataclass
class RecordForm:
    """The filing form as typed: the record's fields and the entity rows, as strings."""

    values: dict[str, str]
    drug_types: list[str]
    entities: list[dict[str, str]]

    @classmethod
    def blank(cls) -> "RecordForm":
        return cls(values=dict(DEFAULTS), drug_types=[], entities=[])

    @classmethod
    def read(cls, form: FormData, drop: str | None = None) -> "RecordForm":
        """The form as sent, without the entity row of index `drop`; entity rows in the
        order of their indexes (rows added by the script may leave gaps), renumbered
        from 0."""
        values = {name: str(form.get(name) or "").strip() for name in RECORD_FIELDS}
        values["narrative"] = str(form.get("narrative") or "")
        rows: dict[int, dict[str, str]] = {}
        for key, value in form.multi_items():
            match = ENTITY_INPUT.match(key)
            if match and isinstance(value, str):
                rows.setdefault(int(match[1]), {})[match[2]] = value.strip()
        return cls(
            values=values,
            drug_types=[str(v) for v in form.getlist("drug_types")],
            entities=[rows[i] for i in sorted(rows) if str(i) != drop],
        )

    def body(self) -> dict[str, Any]:
        """The RecordCreate input: fields left empty are left out (the schema then says
        which are required); the date and time typed are Paris time."""
        given = {k: v for k, v in self.values.items() if v}
        body: dict[str, Any] = {k: given[k] for k in RECORD_FIELDS if k in given and k not in READ}
        if "occurred_at" in given:
            body["occurred_at"] = _paris_time(given["occurred_at"])
        body["location"] = {k: given[k] for k in ("commune", "departement") if k in given}
        body["drug_types"] = self.drug_types
        body["tags"] = _split(self.values["tags"])
        body["entities"] = [_entity_body(row) for row in self.entities]
        return body


def _paris_time(typed: str) -> datetime | str:
    """A `datetime-local` value read in Europe/Paris; left as typed when it is not one
    (the schema then says so)."""
    try:
        moment = datetime.fromisoformat(typed)
    except ValueError:
        return typed
    return moment if moment.tzinfo else moment.replace(tzinfo=pages.PARIS)


def _entity_body(row: dict[str, str]) -> dict[str, Any]:
    kind = row.get("kind", "")
    body: dict[str, Any] = {"kind": kind} if kind else {}
    for spec in ENTITY_FIELDS.get(kind, ()):
        value = row.get(spec.name, "")
        if value:
            body[spec.name] = _split(value) if spec.kind == "list" else value
    return body


def _form_field(loc: tuple) -> str:
    """The form field showing a pydantic error of RecordCreate at `loc`."""
    head = loc[0] if loc else ""
    if head == "entities" and len(loc) >= 2:
        # (entities, i, kind, field, …) → entities-i-field; the row itself otherwise.
        return f"entities-{loc[1]}-{loc[3]}" if len(loc) >= 4 else f"entities-{loc[1]}"
    if head == "location" and len(loc) >= 2:
        return str(loc[1])
    return str(head)


def _record_errors(exc: ValidationError) -> dict[str, str]:
    errors = pages.field_errors(exc, _form_field)
    for error in exc.errors():
        name = _form_field(tuple(error["loc"]))
        if error["type"] == "value_error" and name in VALUE_ERRORS:
            errors[name] = VALUE_ERRORS[name]
    return errors


def _error_summary(errors: dict[str, str], form: RecordForm) -> list[tuple[str, str, str]]:
    """(anchor, what, message) for each error, in the order of the form."""
    summary = []
    for name, message in errors.items():
        match = ENTITY_ERROR.match(name)
        if match:
            index = int(match[1])
            kind = form.entities[index].get("kind", "") if index < len(form.entities) else ""
            what = f"Entité {index + 1} ({ENTITY_KINDS.get(kind, kind)})"
            labels = {spec.name: spec.label for spec in ENTITY_FIELDS.get(kind, ())}
            if match[2]:
                what += f" — {labels.get(match[2], match[2])}"
        else:
            what = FIELD_LABELS.get(name, name)
        summary.append((GROUP_ANCHORS.get(name, name), what, message))
    return summary


def _uploads(form: FormData, name: str) -> list[UploadFile]:
    """The files chosen in a file input (an input left empty sends a nameless part)."""
    return [f for f in form.getlist(name) if isinstance(f, UploadFile) and f.filename]


def _attachment_refusal(problem: Problem, filename: str | None, max_bytes: int) -> str | None:
    """The message beside the file input for a file the store refused; None otherwise."""
    if problem.status == 413:
        return f"« {filename} » est trop volumineux : {max_bytes // 2**20} Mo au plus par fichier."
    if problem.status == 415:
        return f"« {filename} » : type de fichier refusé ({ALLOWED_FILES} seulement)."
    return None


async def _attach(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    record_id: uuid.UUID,
    uploads: list[UploadFile],
) -> tuple[str, int] | None:
    """Attach the files chosen to the record, all or none: None when done; when the store
    refuses one (413/415), the message beside the file input and the status, the
    transaction undone. Any other refusal propagates."""
    settings = request.app.state.settings
    store = FileStore(settings.data_dir)
    for upload in uploads:
        try:
            await records_service.add_attachment(
                session,
                principal,
                record_id,
                store,
                upload,
                upload.filename,
                settings.attachment_max_bytes,
            )
        except Problem as problem:
            refusal = _attachment_refusal(problem, upload.filename, settings.attachment_max_bytes)
            if refusal is None:
                raise
            await pages.refused(session, problem)
            return refusal, problem.status
    return None


def _file_input(request: Request) -> dict[str, Any]:
    """What a page's file input says of the files it takes."""
    return {
        "max_megabytes": request.app.state.settings.attachment_max_bytes // 2**20,
        "allowed_files": ALLOWED_FILES,
    }


def _purpose_query(purpose: str) -> str:
    """The query string that carries a purpose of access on to a record's links."""
    return "?" + urlencode({"purpose": purpose}) if purpose else ""


def _form_page(
    request: Request,
    principal: Principal,
    form: RecordForm,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
    focus: str | None = None,
    files_dropped: bool = False,
) -> HTMLResponse:
    return pages.render(
        request,
        "record_form.html",
        {
            "form": form,
            "errors": errors or {},
            "error_summary": _error_summary(errors or {}, form),
            "focus": focus,
            "files_dropped": files_dropped,
            "entity_kinds": ENTITY_KINDS,
            "entity_fields": ENTITY_FIELDS,
            "scope_help": pages.SCOPE_HELP,
            "several_units": len(principal.memberships) > 1,
            **_file_input(request),
        },
        status,
    )


@router.get("/renseignements/nouveau", name="record.form")
async def record_form(request: Request, principal: WebPrincipalDep) -> HTMLResponse:
    """The blank filing form."""
    return _form_page(request, principal, RecordForm.blank())


@router.post("/renseignements/nouveau", name="record.create")
async def create_record(
    request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """File a record from the form, with its attachments, in one transaction; then to the
    record's page. The form comes back with everything typed kept: with a row added or
    removed (`action` buttons, without JavaScript), with its errors beside their fields
    (422), or with a refused attachment named beside the file input (413/415, nothing
    stored)."""
    data = await request.form()
    action = str(data.get("action") or "")
    removing = action.startswith("remove_entity:")
    form = RecordForm.read(data, drop=action.removeprefix("remove_entity:") if removing else None)
    uploads = _uploads(data, "attachments")
    if action == "add_entity":
        kind = str(data.get("new_entity_kind") or "")
        if kind in ENTITY_KINDS:
            form.entities.append({"kind": kind})
        audit.note(session, step=action)
        focus = f"entities-{len(form.entities) - 1}" if kind in ENTITY_KINDS else None
        return _form_page(request, principal, form, focus=focus, files_dropped=bool(uploads))
    if removing:
        audit.note(session, step="remove_entity")
        return _form_page(
            request, principal, form, focus="new_entity_kind", files_dropped=bool(uploads)
        )
    try:
        body = RecordCreate.model_validate(form.body())
    except ValidationError as exc:
        pages.invalid_form(session)
        return _form_page(
            request,
            principal,
            form,
            errors=_record_errors(exc),
            status=422,
            files_dropped=bool(uploads),
        )
    try:
        record = await records_service.create_record(
            session, principal, body, request.app.state.settings
        )
    except Problem as problem:
        if problem.status != 422 or not problem.errors:
            raise
        await pages.refused(session, problem)
        errors = {
            str(e["loc"][-1]): SERVICE_ERRORS.get(str(e["loc"][-1]), e["msg"])
            for e in problem.errors
        }
        return _form_page(
            request,
            principal,
            form,
            errors=errors,
            status=problem.status,
            files_dropped=bool(uploads),
        )
    refused = await _attach(request, session, principal, record.id, uploads)
    if refused:
        refusal, status = refused
        return _form_page(
            request,
            principal,
            form,
            errors={"attachments": refusal},
            status=status,
            files_dropped=True,
        )
    return RedirectResponse(f"/renseignements/{record.id}", status_code=303)


# --- the record's page ------------------------------------------------------------------------


def _entity_view(entity: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """An entity as the page shows it: its kind, and its fields filled in, labelled."""
    kind = entity.get("kind", "")
    facts = []
    for spec in ENTITY_FIELDS.get(kind, ()):
        value = entity.get(spec.name)
        if value in (None, "", []):
            continue
        if spec.kind == "list":
            text = ", ".join(value)
        elif spec.kind == "date":
            text = date.fromisoformat(value).strftime("%d/%m/%Y")
        else:
            text = spec.options.get(value, str(value))
        facts.append((spec.label, text))
    return ENTITY_KINDS.get(kind, kind), facts


async def _record_page(
    request: Request,
    session: AsyncSession,
    principal: Principal,
    record_id: uuid.UUID,
    *,
    upload_error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    record = await records_service.get_record(session, principal, record_id)
    out = await records_service.record_out(session, record)
    versions = await records_service.history(session, principal, record_id)
    linked = await cases_service.cases_of_record(session, principal, record_id)
    hits, _ = await deconfliction_service.list_hits(
        session,
        principal,
        kind=None,
        selector_type=None,
        record_id=record_id,
        limit=50,
        cursor=None,
    )
    open_cases, _ = await cases_service.search_cases(
        session,
        principal,
        q=None,
        status="open",
        priority=None,
        unit_id=None,
        limit=100,
        cursor=None,
    )
    linked_ids = {c.id for c in linked}
    return pages.render(
        request,
        "record.html",
        {
            "record": out,
            "entities": [_entity_view(e) for e in out.entities],
            "versions": versions,
            "linked_cases": linked,
            "open_cases": [c for c in open_cases if c.id not in linked_ids],
            "hits": hits,
            "can_edit": await pages.allowed(lambda: policy.check_can_edit(principal, record)),
            "upload_error": upload_error,
            "purpose_query": _purpose_query(request.query_params.get("purpose", "").strip()),
            **_file_input(request),
        },
        status,
    )


@router.get("/renseignements/{record_id}", name="record.read")
async def read_record(
    record_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> HTMLResponse:
    """Fiche renseignement: the record with its handling banner, grading, entities,
    attachments, versions, the cases it is linked to and its deconfliction hits. 404 for a
    record the caller may not see, 410 once purged, 428 (the purpose form) for a record
    seen only through a grant and opened without `?purpose=`."""
    return await _record_page(request, session, principal, record_id)


@router.post("/renseignements/{record_id}/pieces", name="record.attachment.upload")
async def upload_attachments(
    record_id: uuid.UUID, request: Request, session: SessionDep, principal: WebPrincipalDep
) -> Response:
    """Attach the files chosen to the record (its origin unit only), all or none: a file
    refused (413/415) brings the page back with the reason beside the file input."""
    uploads = _uploads(await request.form(), "attachments")
    if not uploads:
        pages.invalid_form(session)
        return await _record_page(
            request,
            session,
            principal,
            record_id,
            upload_error="Choisissez au moins un fichier.",
            status=422,
        )
    refused = await _attach(request, session, principal, record_id, uploads)
    if refused:
        refusal, status = refused
        return await _record_page(
            request, session, principal, record_id, upload_error=refusal, status=status
        )
    return RedirectResponse(f"/renseignements/{record_id}#pieces", status_code=303)


@router.get("/renseignements/{record_id}/pieces/{attachment_id}", name="record.attachment.download")
async def download_attachment(
    record_id: uuid.UUID,
    attachment_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: WebPrincipalDep,
) -> StreamingResponse:
    """Download an attachment, as the API does: always as a download, `nosniff`, and a
    purpose of access (`?purpose=`) as for reading the record."""
    attachment = await records_service.get_attachment(session, principal, record_id, attachment_id)
    return attachment_response(FileStore(request.app.state.settings.data_dir), attachment)


@router.post("/renseignements/{record_id}/dossier", name="case.record.link")
async def link_to_case(
    record_id: uuid.UUID,
    case_id: Annotated[uuid.UUID, Form()],
    session: SessionDep,
    principal: WebPrincipalDep,
) -> RedirectResponse:
    """Rattacher à un dossier: link the record to an open case the caller works, then to
    the case's page (the case's units and team then see the record, unless its handling
    withholds it)."""
    audit.note(session, object_id=case_id)
    await cases_service.link_record(session, principal, case_id, record_id)
    return RedirectResponse(f"/dossiers/{case_id}", status_code=303)


# --- search -------------------------------------------------------------------------------------

PAGE_SIZE = 25
SEARCH_FIELDS = (
    "q",
    "selector",
    "person",
    "drug_type",
    "unit_id",
    "occurred_from",
    "occurred_to",
    "source_reliability",
    "handling_code",
    "cursor",
)
PURPOSE_REQUIRED = (
    "Indiquez un motif de consultation : la référence d'un dossier (ex. CROSS13-2026-0042) ou "
    "une justification d'au moins 10 caractères."
)
SEARCH_ERRORS = {
    "purpose": "Motif non valide : indiquez la référence d'un dossier que vous voyez, ou au "
    "moins 10 caractères.",
    "selector": "Identifiant non reconnu (téléphone, e-mail, IBAN, immatriculation, VIN, OMI, "
    "conteneur…).",
    "person": "Indiquez au moins un nom : « Nom » ou « Nom, prénoms ».",
    "cursor": "Cette page de résultats n'existe plus : relancez la recherche.",
}


class SearchQuery(BaseModel):
    """The search form's criteria (the purpose is read by the audit trail itself)."""

    model_config = ConfigDict(extra="ignore")

    q: str | None = Field(default=None, max_length=500)
    selector: str | None = Field(default=None, max_length=200)
    person: str | None = Field(default=None, max_length=200)
    drug_type: DrugType | None = None
    unit_id: uuid.UUID | None = None
    occurred_from: date | None = None
    occurred_to: date | None = None
    source_reliability: Reliability | None = None
    handling_code: HandlingCode | None = None
    cursor: str | None = Field(default=None, max_length=500)

    def asks(self) -> bool:
        return any(v is not None for k, v in self.__dict__.items() if k != "cursor")

    def params(self) -> records_service.SearchParams:
        """The service's parameters; dates are whole days in Paris, `occurred_to` included."""

        def midnight(day: date) -> datetime:
            return datetime.combine(day, time(), tzinfo=pages.PARIS)

        return records_service.SearchParams(
            q=self.q,
            selector=self.selector,
            person=self.person,
            drug_type=self.drug_type,
            unit_id=self.unit_id,
            occurred_from=midnight(self.occurred_from) if self.occurred_from else None,
            occurred_to=midnight(self.occurred_to + timedelta(days=1))
            if self.occurred_to
            else None,
            source_reliability=self.source_reliability,
            handling_code=self.handling_code,
            limit=PAGE_SIZE,
            cursor=self.cursor,
            facets=True,
        )


def _search_refusal(problem: Problem) -> dict[str, str] | None:
    """The errors to show beside the search form's fields for a search the service
    refused; None for a refusal that is not about the form."""
    if problem.code == "purpose_required":
        return {"purpose": PURPOSE_REQUIRED}
    if problem.status != 422 or not problem.errors:
        return None
    errors = {}
    for error in problem.errors:
        name = str(error["loc"][-1])
        name = "purpose" if "purpose" in name.lower() else name
        errors[name] = SEARCH_ERRORS.get(name, str(error["msg"]))
    return errors


MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)


def _month_label(month: str) -> str:
    """`2026-10` → `octobre 2026`."""
    year, number = month.split("-")
    return f"{MONTHS[int(number) - 1]} {year}"


def _month_range(month: str) -> dict[str, str]:
    """The first and last days of a facet's month (`2026-10`)."""
    first = date.fromisoformat(month + "-01")
    last = (first + timedelta(days=31)).replace(day=1) - timedelta(days=1)
    return {"occurred_from": first.isoformat(), "occurred_to": last.isoformat()}


@router.get("/recherche", name="record.search")
async def search(request: Request, session: SessionDep, principal: WebPrincipalDep) -> HTMLResponse:
    """Recherche: text, identifier (selector) or person search with filters, facets that
    add a filter, and result pages. Searching by identifier or person needs a purpose
    (`purpose`, read by the audit trail): without one, or with an invalid one, the form
    comes back with the reason beside the field (428 / 422). No criteria: the form only."""
    given = {k: v.strip() for k, v in request.query_params.items() if k in SEARCH_FIELDS}
    purpose = request.query_params.get("purpose", "").strip()
    units = {str(u.id): u.code for u in await units_service.list_units(session)}
    units = dict(sorted(units.items(), key=lambda item: item[1]))

    def link(**changes: str) -> str:
        """This search with `changes` applied, from its first page."""
        query = {k: v for k, v in given.items() if v and k != "cursor"}
        query.update(changes)
        if purpose:
            query["purpose"] = purpose
        return "/recherche?" + urlencode(query)

    context: dict[str, Any] = {
        "failed": "search",  # forms.html shows what was typed in the form so named
        "values": {**given, "purpose": purpose},
        "units": units,
        "errors": {},
        "searched": False,
    }

    def page(status: int = 200) -> HTMLResponse:
        return pages.render(request, "search.html", context, status)

    try:
        query = SearchQuery.model_validate({k: v for k, v in given.items() if v})
    except ValidationError as exc:
        pages.invalid_form(session)
        context["errors"] = pages.field_errors(exc, lambda loc: str(loc[0]))
        return page(422)
    if not query.asks():
        return page()
    try:
        items, next_cursor, facets = await records_service.search_records(
            session, principal, query.params()
        )
    except Problem as problem:
        errors = _search_refusal(problem)
        if errors is None:
            raise
        await pages.refused(session, problem)
        context["errors"] = errors
        return page(problem.status)
    unit_ids = {code: unit_id for unit_id, code in units.items()}
    context.update(
        searched=True,
        items=items,
        record_query=_purpose_query(purpose),
        total=sum(facets.unit.values()),
        next_page=link(cursor=next_cursor) if next_cursor else None,
        facet_drugs=[
            (link(drug_type=k), pages.label(k, "drug_type"), n) for k, n in facets.drug_type.items()
        ],
        facet_units=[(link(unit_id=unit_ids[k]), k, n) for k, n in facets.unit.items()],
        facet_months=[
            (link(**_month_range(k)), _month_label(k), n) for k, n in facets.month.items()
        ],
    )
    return page()
