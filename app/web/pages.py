"""Rendering the web client's pages: the Jinja2 environment, French labels and dates, and
form errors in French next to their field.

Interface text is French (the users are French officers); code, identifiers and the API
stay English. The labels below are the only translation table of the client.
"""

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Problem
from app.services import audit

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
MARKINGS = {"NP": "NP — Non protégé", "DR": "DR — Diffusion restreinte"}
PRIORITIES = {"routine": "Normale", "high": "Haute", "urgent": "Urgente"}
CASE_STATUSES = {"open": "Ouvert", "escalated": "Escaladé", "closed": "Clos"}
ESCALATION_STATUSES = {
    "pending": "En attente",
    "accepted": "Acceptée",
    "returned": "Renvoyée",
    "declined": "Refusée",
}
DECISIONS = {"accept": "Accepter", "return": "Renvoyer", "decline": "Refuser"}

LABELS = {
    "agency": AGENCIES,
    "role": ROLES,
    "unit_kind": UNIT_KINDS,
    "drug_type": DRUG_TYPES,
    "reliability": SOURCE_RELIABILITY,
    "assessment": INFORMATION_ASSESSMENT,
    "handling": HANDLING_CODES,
    "scope": SCOPES,
    "marking": MARKINGS,
    "priority": PRIORITIES,
    "case_status": CASE_STATUSES,
    "escalation_status": ESCALATION_STATUSES,
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


templates.env.filters["label"] = label
templates.env.filters["when"] = when
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
