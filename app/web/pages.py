"""Rendering the web client's pages: the Jinja2 environment, French labels and dates, and
form errors in French next to their field.

Interface text is French (the users are French officers); code, identifiers and the API
stay English. The labels below are the only translation table of the client.
"""

import inspect
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Problem
from app.services import audit, deconfliction

PARIS = ZoneInfo("Europe/Paris")
HERE = Path(__file__).resolve().parent

templates = Jinja2Templates(directory=HERE / "templates")

# --- vocabularies ---------------------------------------------------------------------------

AGENCIES = {
    "police": "Police nationale",
    "gendarmerie": "Gendarmerie nationale",
    "douane": "Douane",
    "justice": "Justice",
    "ofast": "OFAST",
}
ROLES = {"officer": "enquêteur", "supervisor": "chef d'unité", "analyst": "analyste"}
UNIT_KINDS = {
    "national": "Échelon national",
    "pole": "Pôle",
    "antenne": "Antenne",
    "detachement": "Détachement",
    "cross": "CROSS",
}
DRUG_TYPES = {
    "herbal_cannabis": "Herbe de cannabis",
    "cannabis_resin": "Résine de cannabis",
    "cannabis_plants": "Plants de cannabis",
    "cocaine": "Cocaïne",
    "crack": "Crack",
    "heroin": "Héroïne",
    "amphetamine": "Amphétamine",
    "methamphetamine": "Méthamphétamine",
    "mdma": "MDMA / ecstasy",
    "synthetic_cathinones_nps": "Cathinones de synthèse / NPS",
    "other": "Autre produit",
}
# Grading: reliability of the source (A/B/C/X) and assessment of the information (1–4).
SOURCE_RELIABILITY = {
    "A": "A — Fiabilité certaine (aucun doute)",
    "B": "B — Source le plus souvent fiable",
    "C": "C — Source le plus souvent peu fiable",
    "X": "X — Fiabilité impossible à évaluer",
}
INFORMATION_ASSESSMENT = {
    1: "1 — Information certaine (aucun doute)",
    2: "2 — Connue personnellement de la source",
    3: "3 — Non connue personnellement de la source, corroborée",
    4: "4 — Non connue personnellement de la source, non corroborée",
}
HANDLING_CODES = {
    "H0": "H0 — Usage par les services répressifs",
    "H1": "H1 — Pas d'usage en procédure judiciaire sans l'accord de l'unité d'origine",
    "H2": "H2 — Ne pas transmettre sans l'accord de l'unité d'origine",
    "H3": "H3 — Autres restrictions (à préciser)",
}
SCOPES = {
    "agency": "Mon administration seulement, dans mon unité",
    "unit": "Toute mon unité (police, gendarmerie et douane)",
    "chain": "Mon unité et les unités au-dessus d'elle, jusqu'à l'OFAST",
    "network": "Tout le réseau des CROSS et l'OFAST",
}
SCOPE_HELP = {
    "agency": "Seuls les agents de votre administration membres de votre unité le verront.",
    "unit": "Tous les membres de votre unité le verront, quelle que soit leur administration.",
    "chain": "Votre unité et sa hiérarchie (antenne, pôle, OFAST) le verront.",
    "network": "Toutes les unités du réseau le verront.",
}
# The same scopes as a reader of the record sees them (the form speaks to its author).
RECORD_SCOPES = {
    "agency": "Administration de l'auteur seulement, dans l'unité d'origine",
    "unit": "Toute l'unité d'origine (police, gendarmerie et douane)",
    "chain": "L'unité d'origine et les unités au-dessus d'elle, jusqu'à l'OFAST",
    "network": "Tout le réseau des CROSS et l'OFAST",
}
MARKINGS = {"NP": "NP — Non protégé", "DR": "DR — Diffusion restreinte"}
PRIORITIES = {"routine": "Normale", "high": "Haute", "urgent": "Urgente"}
CASE_STATUSES = {"open": "Ouvert", "escalated": "Escaladé", "closed": "Clos"}
ESCALATION_STATUSES = {
    "pending": "En attente",
    "accepted": "Acceptée",
    "returned": "Renvoyée",
    "declined": "Refusée",
}
ENTITY_KINDS = {
    "person": "Personne",
    "organisation": "Organisation",
    "phone": "Téléphone",
    "email": "Adresse électronique",
    "vehicle": "Véhicule",
    "vessel": "Navire",
    "container": "Conteneur",
    "bank_account": "Compte bancaire",
    "crypto_wallet": "Portefeuille de cryptoactifs",
    "identity_document": "Pièce d'identité",
    "address": "Adresse",
}
# The decision radios of the review queue, in the order shown. `forward` is the page's own:
# accepting at an intermediate level and escalating at once to the level above.
FORWARD = "forward"
DECISIONS = {
    "accept": "Accepter",
    FORWARD: "Transmettre à l'échelon supérieur",
    "return": "Renvoyer",
    "decline": "Refuser",
}
DECISION_HELP = {
    "accept": "Votre unité prend le dossier en charge ; l'unité d'origine garde son accès.",
    FORWARD: "Votre unité accepte le dossier et l'escalade aussitôt à {unit}, avec vos"
    " observations pour motif et la même priorité.",
    "return": "Le dossier revient à l'unité d'origine pour complément d'information.",
    "decline": "Le dossier revient à l'unité d'origine ; vos observations motivent le refus.",
}
TEAM_ROLES = {"lead": "Chef d'enquête", "member": "Membre", "observer": "Observateur"}
TASK_STATUSES = {"todo": "À faire", "doing": "En cours", "done": "Terminée"}
QUANTITY_UNITS = {
    "kg": "kg",
    "g": "g",
    "tablets": "comprimés",
    "doses": "doses",
    "plants": "plants",
}
ASSET_CATEGORIES = {
    "cash": "Numéraire",
    "bank_account": "Compte bancaire",
    "vehicle": "Véhicule",
    "real_estate": "Bien immobilier",
    "crypto": "Cryptoactifs",
    "luxury_goods": "Biens de luxe",
    "other": "Autre bien",
}
OUTCOMES = {
    "judicial_referral": "Saisine de l'autorité judiciaire",
    "transferred": "Transmis à un autre service",
    "no_further_action": "Sans suite",
    "merged": "Joint à un autre dossier",
}
# What a line of a case's timeline says happened.
CASE_EVENTS = {
    "created": "Dossier ouvert",
    "updated": "Dossier modifié",
    "team_member_set": "Équipe : agent ajouté ou modifié",
    "team_member_removed": "Équipe : agent retiré",
    "record_linked": "Renseignement rattaché",
    "entity_added": "Entité ajoutée",
    "task_added": "Tâche ajoutée",
    "task_changed": "Tâche modifiée",
    "note_added": "Note ajoutée",
    "drug_seizure_added": "Saisie de stupéfiants",
    "asset_seizure_added": "Saisie d'avoirs",
    "arrest_added": "Interpellations",
    "closed": "Dossier clos",
    "reopened": "Dossier rouvert",
    "delegated": "Dossier délégué",
    "escalated": "Escalade demandée",
    "escalation_accepted": "Escalade acceptée",
    "escalation_returned": "Escalade renvoyée",
    "escalation_declined": "Escalade refusée",
}
# The details of a timeline line worth showing, and what they are called.
CASE_EVENT_DETAILS = {
    "reference": "référence",
    "title": "titre",
    "summary": "résumé",
    "priority": "priorité",
    "unit": "unité",
    "to_unit": "vers",
    "by_unit": "par",
    "justification": "motif",
    "note": "observations",
    "outcome": "issue",
    "outcome_before": "issue précédente",
    "judicial_reference": "référence judiciaire",
    "user": "agent",
    "role": "rôle",
    "expires_at": "jusqu'au",
    "status": "statut",
    "due_on": "échéance",
    "substance": "produit",
    "quantity": "quantité",
    "category": "catégorie",
    "estimated_value_eur": "valeur estimée (€)",
    "count": "nombre",
}

LABELS = {
    "agency": AGENCIES,
    "role": ROLES,
    "unit_kind": UNIT_KINDS,
    "drug_type": DRUG_TYPES,
    "reliability": SOURCE_RELIABILITY,
    "assessment": INFORMATION_ASSESSMENT,
    "handling": HANDLING_CODES,
    "scope": SCOPES,
    "record_scope": RECORD_SCOPES,
    "marking": MARKINGS,
    "priority": PRIORITIES,
    "case_status": CASE_STATUSES,
    "escalation_status": ESCALATION_STATUSES,
    "entity_kind": ENTITY_KINDS,
    "selector_type": deconfliction.TYPE_LABELS,
    "decision": DECISIONS,
    "team_role": TEAM_ROLES,
    "task_status": TASK_STATUSES,
    "quantity_unit": QUANTITY_UNITS,
    "asset_category": ASSET_CATEGORIES,
    "outcome": OUTCOMES,
    "case_event": CASE_EVENTS,
    "case_event_detail": CASE_EVENT_DETAILS,
}


def label(value: Any, vocabulary: str) -> str:
    """The French label of a value, or the value itself when the table lacks it."""
    return LABELS[vocabulary].get(value, str(value)) if value is not None else ""


def when(value: datetime | None, with_time: bool = True) -> str:
    """A date (and time) in Paris, as French officers write it: 27/11/2026 18:05."""
    if value is None:
        return ""
    local = value.astimezone(PARIS)
    return local.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")


def ago(value: datetime | None) -> str:
    """How long ago, as one says it: « il y a 3 jours » (the largest whole unit)."""
    if value is None:
        return ""
    seconds = max(0, int((datetime.now(UTC) - value).total_seconds()))
    units = ((86400, "jour", "jours"), (3600, "heure", "heures"), (60, "minute", "minutes"))
    for size, one, many in units:
        if seconds >= size:
            count = seconds // size
            return f"il y a {count} {one if count == 1 else many}"
    return "à l'instant"


def number(value: Decimal | int | float | None, places: int | None = None) -> str:
    """A number as written in French: « 1 234,5 » (`places` decimals when given, else
    without trailing zeros)."""
    if value is None:
        return ""
    text = f"{Decimal(value):,.{places}f}" if places is not None else f"{Decimal(value):,f}"
    if places is None and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace(",", "\u202f").replace(".", ",")


templates.env.filters["label"] = label
templates.env.filters["when"] = when
templates.env.filters["ago"] = ago
templates.env.filters["number"] = number
templates.env.globals["LABELS"] = LABELS


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """A page, with what every page needs: the signed-in principal and the CSRF token."""
    state = request.state
    full = {
        "principal": getattr(state, "principal", None),
        "csrf_token": getattr(state, "csrf_token", ""),
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, full, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- form errors ----------------------------------------------------------------------------

_MESSAGES = {
    "missing": "Ce champ est obligatoire.",
    "string_too_short": "Trop court : au moins {min_length} caractères.",
    "string_too_long": "Trop long : au plus {max_length} caractères.",
    "too_long": "Trop d'éléments : au plus {max_length}.",
    "greater_than_equal": "Doit être au moins {ge}.",
    "less_than_equal": "Doit être au plus {le}.",
    "literal_error": "Choisissez une valeur de la liste.",
    "enum": "Choisissez une valeur de la liste.",
    "int_parsing": "Nombre entier attendu.",
    "float_parsing": "Nombre attendu.",
    "decimal_parsing": "Nombre attendu (par exemple 2,5).",
    "decimal_max_digits": "Trop de chiffres : au plus {max_digits}.",
    "decimal_max_places": "Trop de décimales : au plus {decimal_places}.",
    "greater_than": "Doit être supérieur à {gt}.",
    "datetime_from_date_parsing": "Date et heure attendues (jj/mm/aaaa hh:mm).",
    "datetime_parsing": "Date et heure attendues (jj/mm/aaaa hh:mm).",
    "date_from_datetime_parsing": "Date attendue (jj/mm/aaaa).",
    "date_parsing": "Date attendue (jj/mm/aaaa).",
    "string_pattern_mismatch": "Format invalide.",
    "uuid_parsing": "Choisissez une valeur de la liste.",
    "invalid_phone": "Numéro de téléphone invalide pour le pays indiqué.",
    "invalid_email": "Adresse électronique invalide.",
    "invalid_iban": "IBAN invalide.",
    "invalid_bic": "BIC invalide.",
    "invalid_siren": "Numéro SIREN invalide.",
    "invalid_imo": "Numéro OMI invalide.",
    "invalid_container": "Numéro de conteneur invalide (ISO 6346).",
    "invalid_vin": "Numéro VIN invalide.",
    "invalid_plate": "Immatriculation invalide : lettres et chiffres seulement.",
    "invalid_document": "Numéro de document invalide : lettres et chiffres seulement.",
    "invalid_crypto_address": "Adresse de portefeuille invalide pour cette chaîne.",
    "plate_or_vin_required": "Indiquez une immatriculation ou un VIN.",
    "union_tag_invalid": "Type d'entité inconnu.",
    "union_tag_not_found": "Choisissez le type d'entité.",
    "extra_forbidden": "Champ non prévu.",
}


def french(error: dict[str, Any]) -> str:
    """One pydantic error in French (the field is shown beside it, not named in it)."""
    template = _MESSAGES.get(error.get("type", ""))
    if template is None:
        message = str(error.get("msg", "Valeur invalide."))
        return message.removeprefix("Value error, ")
    try:
        return template.format(**(error.get("ctx") or {}))
    except (KeyError, IndexError):
        return template


def field_errors(exc: ValidationError, name_of=None) -> dict[str, str]:
    """{form field name: French message}. `name_of` maps a pydantic location to the name
    of the form field showing it (default: the location's parts joined by '-', without
    the discriminating kind of an entity); the first error of a field wins."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        loc = tuple(error.get("loc", ()))
        name = name_of(loc) if name_of else "-".join(str(p) for p in loc)
        errors.setdefault(name, french(error))
    return errors


async def refused(session: AsyncSession, problem: Problem) -> None:
    """A service refused what a form asked (the page shows why, beside the form): undo
    anything it began, and let the request's audit event say it was refused."""
    await session.rollback()
    outcome = "denied" if problem.status in audit.DENIALS else "failure"
    audit.note(session, outcome=outcome, status=problem.status)


def invalid_form(session: AsyncSession) -> None:
    """A form was sent back for its errors before any service ran: say so in the audit."""
    audit.note(session, outcome="failure", status=422)


# --- forms ------------------------------------------------------------------------------

# The key of a form's errors under which a message about the whole form is shown.
WHOLE_FORM = "_form"

REFUSALS = {
    "forbidden": "Cette action ne vous est pas permise.",
    "case_not_open": "Impossible : le dossier n'est pas ouvert (il est escaladé ou clos).",
    "case_closed": "Le dossier est clos : rouvrez-le d'abord.",
    "case_not_closed": "Seul un dossier clos peut être rouvert.",
    "escalation_pending": "Ce dossier a déjà une escalade en attente de décision.",
    "already_decided": "Cette escalade a déjà été décidée, sans doute par un autre chef d'unité.",
    "already_linked": "Ce renseignement est déjà rattaché au dossier.",
    "lead_required": "Le chef d'enquête reste dans l'équipe : désignez d'abord un autre chef.",
    "precondition_failed": (
        "Le dossier a été modifié entre-temps : rechargez la page et recommencez."
    ),
}
# The services' messages about one field, in French.
_SERVICE_MESSAGES = {
    "not a unit above the custody unit": "Choisissez une unité au-dessus de l'unité saisie.",
    "the custody unit has no unit above it": "L'unité saisie n'a pas d'échelon supérieur.",
    "no such active officer": "Aucun agent actif ne porte cet identifiant.",
    "not a member of the custody unit or of the case team": (
        "Cet agent n'est ni membre de l'unité saisie ni de l'équipe du dossier."
    ),
    "the case lead stays lead without expiry; name another lead first": (
        "Le chef d'enquête le reste, sans échéance : désignez d'abord un autre chef."
    ),
    "not a person entity of this case": "Choisissez une personne liée au dossier.",
}


async def form_fields(
    request: Request, names: Iterable[str], repeated: Iterable[str] = ()
) -> dict[str, Any]:
    """The named fields of a posted form (the CSRF token and anything else left out);
    blank ones are left out too, so that the schema's defaults apply. `repeated` fields
    (check boxes) come as lists."""
    form = await request.form()
    fields: dict[str, Any] = {}
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            fields[name] = value
    for name in repeated:
        values = [v for v in form.getlist(name) if isinstance(v, str) and v.strip()]
        if values:
            fields[name] = values
    return fields


def refusal(problem: Problem) -> dict[str, str]:
    """A service's refusal in French: beside the field it names, or about the whole form."""
    errors: dict[str, str] = {}
    for error in problem.errors or ():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "path", "query")]
        message = _SERVICE_MESSAGES.get(error.get("msg", ""), "Valeur refusée.")
        errors.setdefault("-".join(loc) or WHOLE_FORM, message)
    if not errors:
        errors[WHOLE_FORM] = REFUSALS.get(problem.code, "La demande n'a pas pu aboutir.")
    return errors


async def allowed(check: Callable[[], Awaitable[None] | None]) -> bool:
    """Whether a policy check lets the viewer do something (it raises when not): which
    forms a page offers."""
    try:
        result = check()
        if inspect.isawaitable(result):
            await result
    except Problem:
        return False
    return True


async def attempt(
    session: AsyncSession, action: Callable[[], Awaitable[Any]]
) -> tuple[Any, dict[str, str], int]:
    """Run what a form asks: (its result, {}, 200) when done, else (None, its French errors,
    the status to answer with), the transaction undone and the audit told. What does not
    exist for the user (404) is not a form error: it propagates to the 404 page."""
    try:
        result = await action()
    except ValidationError as exc:
        invalid_form(session)
        return None, field_errors(exc), 422
    except Problem as problem:
        if problem.status == 404:
            raise
        await refused(session, problem)
        return None, refusal(problem), problem.status
    return result, {}, 200
