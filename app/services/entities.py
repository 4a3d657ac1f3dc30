"""Selectors: the normalised identifiers an entity yields, for search and deconfliction.

Pure functions, no database. A selector is a `(type, value)` pair; two records mention the
same thing when they share a selector. Types and value shapes (`SELECTOR_TYPES`):

    person             SURNAME|GIVEN NAMES|YYYY-MM-DD (folded; only with a birth date)
    person_name        SURNAME|GIVEN NAMES (folded)
    organisation       folded name
    siren              9 digits
    phone              E.164, +33612345678
    email              lower case, as normalised by email-validator
    plate              COUNTRY:PLATE, FR:AB123CD
    vin                17 characters, upper case
    imo                7 digits
    container          ISO 6346, CSQU3054383
    iban               compact upper case
    bic                8 or 11 characters (a branch `XXX` is dropped)
    crypto_wallet      chain:address (ethereum and bech32 bitcoin addresses lower-cased)
    identity_document  COUNTRY:KIND:NUMBER, FR:PASSPORT:12AB34567
    address            LINE|POSTCODE|COMMUNE|COUNTRY (folded; empty postcode when unknown)

"Folded" text is upper case, without accents, with runs of spaces, hyphens, dashes and
underscores made one space (`fold`).
"""

import re
import unicodedata
from collections.abc import Callable

import phonenumbers
from pydantic_core import PydanticCustomError

from app.schemas.entities import (
    AddressEntity,
    BankAccountEntity,
    ContainerEntity,
    CryptoWalletEntity,
    EmailEntity,
    Entity,
    IdentityDocumentEntity,
    OrganisationEntity,
    PersonEntity,
    PhoneEntity,
    VehicleEntity,
    VesselEntity,
    canonical_bic,
    canonical_container,
    canonical_crypto_address,
    canonical_email,
    canonical_iban,
    canonical_imo,
    canonical_phone,
    canonical_siren,
    canonical_vin,
    compact_code,
)

SELECTOR_TYPES: tuple[str, ...] = (
    "person",
    "person_name",
    "organisation",
    "siren",
    "phone",
    "email",
    "plate",
    "vin",
    "imo",
    "container",
    "iban",
    "bic",
    "crypto_wallet",
    "identity_document",
    "address",
)

Selector = tuple[str, str]

# Letters that Unicode decomposition leaves whole.
_LETTERS = str.maketrans(
    {
        "Œ": "OE", "œ": "oe", "Æ": "AE", "æ": "ae", "Ø": "O", "ø": "o", "Ł": "L", "ł": "l",
        "Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Þ": "TH", "þ": "th", "ß": "ss",
        "’": "'", "‘": "'", "ʼ": "'",
    }
)  # fmt: skip
_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―_|]+")
_ADDRESS_PUNCTUATION = re.compile(r"[,;.:/\"'()]+")


def fold(text: str) -> str:
    """Upper case, accents stripped, spaces/hyphens folded: `Jean-Pierre  Hélène` → `JEAN
    PIERRE HELENE`. `|` is folded too, so a folded part never holds a selector separator."""
    text = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEPARATORS.sub(" ", text).strip().upper()


def _fold_address(text: str) -> str:
    return fold(_ADDRESS_PUNCTUATION.sub(" ", text))


def person_name(surname: str, given_names: str = "") -> str:
    """The `person_name` selector value: `SURNAME|GIVEN NAMES`, folded."""
    return f"{fold(surname)}|{fold(given_names)}"


def selectors(entity: Entity) -> list[Selector]:
    """The normalised (type, value) selectors of a validated entity, without duplicates."""
    out: list[Selector] = []
    match entity:
        case PersonEntity():
            name = person_name(entity.surname, entity.given_names)
            if entity.birth_date is not None:
                out.append(("person", f"{name}|{entity.birth_date.isoformat()}"))
            out.append(("person_name", name))
        case OrganisationEntity():
            out.append(("organisation", fold(entity.name)))
            if entity.siren is not None:
                out.append(("siren", canonical_siren(entity.siren)))
        case PhoneEntity():
            out.append(("phone", canonical_phone(entity.number, entity.region)))
        case EmailEntity():
            out.append(("email", canonical_email(entity.address)))
        case VehicleEntity():
            if entity.plate is not None:
                out.append(("plate", f"{entity.country}:{compact_code(entity.plate)}"))
            if entity.vin is not None:
                out.append(("vin", canonical_vin(entity.vin)))
        case VesselEntity():
            out.append(("imo", canonical_imo(entity.imo)))
        case ContainerEntity():
            out.append(("container", canonical_container(entity.number)))
        case BankAccountEntity():
            out.append(("iban", canonical_iban(entity.iban)))
            if entity.bic is not None:
                out.append(("bic", canonical_bic(entity.bic)))
        case CryptoWalletEntity():
            address = canonical_crypto_address(entity.chain, entity.address)
            out.append(("crypto_wallet", f"{entity.chain}:{address}"))
        case IdentityDocumentEntity():
            kind = entity.doc_kind.upper()
            out.append(
                ("identity_document", f"{entity.country}:{kind}:{compact_code(entity.number)}")
            )
        case AddressEntity():
            parts = (entity.line, entity.postcode or "", entity.commune, entity.country)
            out.append(("address", "|".join(_fold_address(p) for p in parts)))
        case _:
            raise TypeError(f"not an entity: {type(entity).__name__}")
    return list(dict.fromkeys(out))


# --- search -----------------------------------------------------------------------------

_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]{6,}$")
_IMO_LIKE = re.compile(r"^(IMO)?\s*\d{7}$", re.IGNORECASE)
_SIREN_LIKE = re.compile(r"^\d{3}\s?\d{3}\s?\d{3}$")
# A French plate: SIV (AB-123-CD, since 2009; I, O and U are not used) or FNI (1234 AB 75).
_FR_PLATE = re.compile(
    r"^(?:[A-HJ-NP-TV-Z]{2}[\s-]?\d{3}[\s-]?[A-HJ-NP-TV-Z]{2}"
    r"|\d{1,4}[\s-]?[A-Z]{1,3}[\s-]?(?:\d{2}|2A|2B|97\d))$"
)


def _attempt(out: list[Selector], type_: str, func: Callable[..., str], *args: str) -> None:
    try:
        out.append((type_, func(*args)))
    except (PydanticCustomError, ValueError):
        pass


def search_selectors(raw: str) -> list[Selector]:
    """Every (type, value) selector a free-typed identifier may be, for exact-match search.

    Each interpretation that validates is kept, so an ambiguous string yields several:
    `06 12 34 56 78` → [("phone", "+33612345678")];
    `FR76 3000 6000 0112 3456 7890 189` → [("iban", "FR7630006000011234567890189")].
    Phones are read as French unless they carry an international prefix (+ or 00). Names
    are not matched here: full-text search covers them.
    """
    text = raw.strip()
    if not text or len(text) > 256:
        return []
    out: list[Selector] = []
    if _PHONE_LIKE.match(text):
        _attempt(out, "phone", canonical_phone, text, "FR")
    _attempt(out, "iban", canonical_iban, text)
    _attempt(out, "container", canonical_container, text)
    if _IMO_LIKE.match(text):
        _attempt(out, "imo", canonical_imo, text)
    if _SIREN_LIKE.match(text):
        _attempt(out, "siren", canonical_siren, text)
    if "@" in text:
        _attempt(out, "email", canonical_email, text)
    _attempt(out, "vin", canonical_vin, text)
    if _FR_PLATE.match(text.upper()):
        out.append(("plate", f"FR:{compact_code(text)}"))
    for chain in ("bitcoin", "ethereum", "tron", "monero"):
        try:
            out.append(("crypto_wallet", f"{chain}:{canonical_crypto_address(chain, text)}"))
        except (PydanticCustomError, ValueError):
            pass
    return list(dict.fromkeys(out))


# --- text and display -------------------------------------------------------------------


def entity_names(entity: Entity) -> list[str]:
    """Text for full-text search: person names and aliases, organisation and vessel names,
    communes; as filed (not folded), without duplicates."""
    names: list[str] = []
    match entity:
        case PersonEntity():
            names.append(f"{entity.given_names} {entity.surname}".strip())
            names.extend(entity.aliases)
        case OrganisationEntity():
            names.append(entity.name)
        case VesselEntity() if entity.name:
            names.append(entity.name)
        case AddressEntity():
            names.append(entity.commune)
    return list(dict.fromkeys(" ".join(n.split()) for n in names if n.strip()))


MASK = "•"


def _mask_middle(value: str) -> str:
    """Keep the first and last 2 characters (1 for values under 8, none under 4)."""
    keep = 2 if len(value) >= 8 else 1 if len(value) >= 4 else 0
    if keep == 0:
        return MASK * len(value)
    return value[:keep] + MASK * (len(value) - 2 * keep) + value[-keep:]


def _mask_phone(value: str) -> str:
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return _mask_middle(value)
    shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    country, _, national = shown.partition(" ")
    digits = [i for i, c in enumerate(national) if c.isdigit()]
    if not national or len(digits) < 4:
        return _mask_middle(value)
    hidden = set(digits[1:-2])
    return country + " " + "".join(MASK if i in hidden else c for i, c in enumerate(national))


def _mask_iban(value: str) -> str:
    masked = value[:2] + MASK * max(len(value) - 6, 0) + value[-4:]
    return " ".join(masked[i : i + 4] for i in range(0, len(masked), 4))


def _mask_person(value: str) -> str:
    """Initials and birth year: `D••••• J•••, 1985`."""
    surname, _, rest = value.partition("|")
    given, _, born = rest.partition("|")
    names = " ".join(w[0] + MASK * (len(w) - 1) for w in f"{surname} {given}".split())
    return f"{names}, {born[:4]}" if born else names


def mask(type_: str, value: str) -> str:
    """A masked selector value, for deconfliction hits that must not disclose it.

    phone: country code, first and last 2 digits (`+33 6 •• •• •• 78`); iban: country and
    last 4, grouped by 4 (`FR•• •••• … •••0 189`); plate, crypto_wallet and
    identity_document keep their `COUNTRY:` / `chain:` / `COUNTRY:KIND:` prefix; persons
    show initials and birth year (`D••••• J•••, 1985`); the rest
    keep their first and last 2 characters.
    """
    if type_ in ("person", "person_name"):
        return _mask_person(value)
    if type_ == "phone":
        return _mask_phone(value)
    if type_ == "iban":
        return _mask_iban(value)
    if type_ in ("plate", "crypto_wallet", "identity_document"):
        prefix, sep, rest = value.rpartition(":")
        return prefix + sep + _mask_middle(rest)
    return _mask_middle(value)
