"""Entities an intelligence record mentions (DESIGN.md §1, "Intelligence records").

`Entity` is a discriminated union on `kind`: person, organisation, phone, email, vehicle,
vessel, container, bank_account, crypto_wallet, identity_document, address.

Every identifier is checked by its field library, never by a hand-written check digit:
phonenumbers (phone), python-stdnum (IBAN, BIC, SIREN, IMO, ISO 6346 containers, bitcoin),
email-validator (e-mail), vininfo (VIN). Models keep values as filed (surrounding spaces
stripped); the canonical forms used for search and deconfliction come from the `canonical_*`
functions below, through `app.services.entities.selectors`.

Error locations. Pydantic adds the union tag to the location, so when a request body carries
`{"entities": [...]}`, an invalid value is reported at

    ["body", "entities", <index>, <kind>, <field>]      e.g. [..., 3, "bank_account", "iban"]

with a stable error `type` (`invalid_phone`, `invalid_iban`, `invalid_container`, ...).
A missing or unknown `kind` is reported at `["body", "entities", <index>]`
(`union_tag_not_found` / `union_tag_invalid`); a rule on several fields (a vehicle needs a
plate or a VIN) at `["body", "entities", <index>, <kind>]`.
"""

import re
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from stdnum import bic as stdnum_bic
from stdnum import bitcoin as stdnum_bitcoin
from stdnum import iban as stdnum_iban
from stdnum import imo as stdnum_imo
from stdnum import iso6346 as stdnum_iso6346
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import siren as stdnum_siren
from vininfo import Vin
from vininfo.exceptions import ValidationError as VinError

EntityKind = Literal[
    "person",
    "organisation",
    "phone",
    "email",
    "vehicle",
    "vessel",
    "container",
    "bank_account",
    "crypto_wallet",
    "identity_document",
    "address",
]
OrgKind = Literal["company", "association", "criminal_group", "public_body", "other"]
CryptoChain = Literal["bitcoin", "ethereum", "tron", "monero", "other"]
DocKind = Literal["passport", "id_card", "residence_permit", "driving_licence", "other"]


# --- canonical forms --------------------------------------------------------------------
# Each takes a value as typed, returns its canonical form, and raises PydanticCustomError
# (a ValueError) when the value is not valid. Used by the models and by the services.


def _invalid(code: str, what: str, reason: object) -> PydanticCustomError:
    return PydanticCustomError(
        f"invalid_{code}", "Invalid {what}: {reason}", {"what": what, "reason": str(reason)}
    )


def _stdnum(module: Any, code: str, what: str) -> Callable[[str], str]:
    def canonical(value: str) -> str:
        try:
            return str(module.validate(value))
        except StdnumError as exc:
            raise _invalid(code, what, exc) from None

    return canonical


canonical_iban = _stdnum(stdnum_iban, "iban", "IBAN")
canonical_siren = _stdnum(stdnum_siren, "siren", "SIREN number")
canonical_imo = _stdnum(stdnum_imo, "imo", "IMO number")
canonical_container = _stdnum(stdnum_iso6346, "container", "container number (ISO 6346)")
_bic = _stdnum(stdnum_bic, "bic", "BIC")


def canonical_bic(value: str) -> str:
    """BIC, upper case; the primary-office branch `XXX` is dropped (BNPAFRPPXXX → BNPAFRPP)."""
    compact = _bic(value)
    return compact[:8] if compact.endswith("XXX") else compact


def canonical_phone(value: str, region: str = "FR") -> str:
    """E.164. National numbers are read in `region` (`06 12 34 56 78` in FR → +33612345678)."""
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise _invalid("phone", "phone number", exc) from None
    if not phonenumbers.is_valid_number(number):
        raise _invalid("phone", "phone number", f"not a valid number (read in region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def canonical_email(value: str) -> str:
    """Normalised by email-validator (no DNS look-up), then lower-cased as a whole.

    email-validator refuses special-use domains, `.onion` included."""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise _invalid("email", "e-mail address", exc) from None
    return result.normalized.lower()


_NORTH_AMERICAN_WMI = re.compile(r"^[1-5]")


def canonical_vin(value: str) -> str:
    """17 characters out of [A-HJ-NPR-Z0-9], upper case (vininfo).

    The ISO 3779 check digit (9th character) is only mandatory for North-American VINs
    (world manufacturer identifier starting 1-5); it is verified there, by vininfo, and not
    elsewhere, where most European manufacturers do not use it."""
    compact = re.sub(r"[\s-]+", "", value)
    try:
        vin = Vin(compact)
    except VinError as exc:
        raise _invalid("vin", "VIN", exc) from None
    if _NORTH_AMERICAN_WMI.match(vin.num) and not vin.verify_checksum(check_year=False):
        raise _invalid("vin", "VIN", "the check digit does not match")
    return vin.num


def compact_code(value: str) -> str:
    """Upper case, without spaces, hyphens, dots or slashes (plates, document numbers)."""
    return re.sub(r"[\s./\-]+", "", value).upper()


def check_plain_code(value: str, code: str, what: str) -> str:
    """A plate or document number: letters and digits, with spaces, - . / between them."""
    if not compact_code(value).isalnum():
        raise _invalid(code, what, "letters and digits only (spaces, - . / allowed)")
    return value


_BASE58 = "1-9A-HJ-NP-Za-km-z"
# No installed library checks ethereum (EIP-55 needs Keccak-256, which hashlib lacks), tron
# or monero addresses: only their shape is checked. Bitcoin addresses are checked by stdnum.
_ADDRESS_SHAPES: dict[str, re.Pattern[str]] = {
    "ethereum": re.compile(r"^0x[0-9a-fA-F]{40}$"),
    "tron": re.compile(rf"^T[{_BASE58}]{{33}}$"),
    "monero": re.compile(rf"^[48][{_BASE58}]{{94}}(?:[{_BASE58}]{{11}})?$"),
    "other": re.compile(r"^\S{1,256}$"),
}


def canonical_crypto_address(chain: str, address: str) -> str:
    """The address as the chain writes it: bech32 bitcoin and ethereum lower-cased."""
    if chain == "bitcoin":
        try:
            return str(stdnum_bitcoin.validate(address))
        except StdnumError as exc:
            raise _invalid("crypto_address", "bitcoin address", exc) from None
    if not _ADDRESS_SHAPES[chain].match(address):
        raise _invalid("crypto_address", f"{chain} address", "not in the chain's address format")
    return address.lower() if chain == "ethereum" else address


# --- field types ------------------------------------------------------------------------


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


# ISO 3166-1 alpha-2 by shape only: pycountry is not a dependency and stdnum has no public
# country list. "UK" passes; GB is the code.
CountryCode = Annotated[str, BeforeValidator(_upper), StringConstraints(pattern=r"^[A-Z]{2}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class _Entity(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PersonEntity(_Entity):
    kind: Literal["person"] = "person"
    surname: Name
    given_names: Annotated[str, StringConstraints(max_length=200)] = ""
    aliases: list[Name] = Field(default_factory=list, max_length=50)
    birth_date: date | None = None
    nationality: CountryCode | None = None


class OrganisationEntity(_Entity):
    kind: Literal["organisation"] = "organisation"
    name: Name
    org_kind: OrgKind | None = None
    siren: Identifier | None = None

    @field_validator("siren")
    @classmethod
    def _siren(cls, value: str | None) -> str | None:
        if value is not None:
            canonical_siren(value)
        return value


class PhoneEntity(_Entity):
    kind: Literal["phone"] = "phone"
    # Declared before `number`, which is read in it.
    region: CountryCode = "FR"
    number: Identifier

    @field_validator("number")
    @classmethod
    def _number(cls, value: str, info: ValidationInfo) -> str:
        region = info.data.get("region")
        if region is not None:  # else region's own error is reported
            canonical_phone(value, region)
        return value


class EmailEntity(_Entity):
    kind: Literal["email"] = "email"
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=320)]

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        canonical_email(value)
        return value


class VehicleEntity(_Entity):
    kind: Literal["vehicle"] = "vehicle"
    plate: Identifier | None = None
    country: CountryCode = "FR"
    vin: Identifier | None = None

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str | None) -> str | None:
        return None if value is None else check_plain_code(value, "plate", "plate")

    @field_validator("vin")
    @classmethod
    def _vin(cls, value: str | None) -> str | None:
        if value is not None:
            canonical_vin(value)
        return value

    @model_validator(mode="after")
    def _plate_or_vin(self) -> "VehicleEntity":
        if self.plate is None and self.vin is None:
            raise PydanticCustomError("plate_or_vin_required", "A vehicle needs a plate or a VIN.")
        return self


class VesselEntity(_Entity):
    kind: Literal["vessel"] = "vessel"
    name: Name | None = None
    imo: Identifier

    @field_validator("imo")
    @classmethod
    def _imo(cls, value: str) -> str:
        canonical_imo(value)
        return value


class ContainerEntity(_Entity):
    kind: Literal["container"] = "container"
    number: Identifier

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        canonical_container(value)
        return value


class BankAccountEntity(_Entity):
    kind: Literal["bank_account"] = "bank_account"
    iban: Identifier
    bic: Identifier | None = None

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        canonical_iban(value)
        return value

    @field_validator("bic")
    @classmethod
    def _bic(cls, value: str | None) -> str | None:
        if value is not None:
            canonical_bic(value)
        return value


class CryptoWalletEntity(_Entity):
    kind: Literal["crypto_wallet"] = "crypto_wallet"
    # Declared before `address`, which is checked against it.
    chain: CryptoChain
    address: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]

    @field_validator("address")
    @classmethod
    def _address(cls, value: str, info: ValidationInfo) -> str:
        chain = info.data.get("chain")
        if chain is not None:  # else chain's own error is reported
            canonical_crypto_address(chain, value)
        return value


class IdentityDocumentEntity(_Entity):
    kind: Literal["identity_document"] = "identity_document"
    doc_kind: DocKind
    number: Identifier
    country: CountryCode

    @field_validator("number")
    @classmethod
    def _number(cls, value: str) -> str:
        return check_plain_code(value, "document_number", "document number")


class AddressEntity(_Entity):
    kind: Literal["address"] = "address"
    line: Name
    postcode: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)] | None = None
    commune: Name
    country: CountryCode = "FR"


Entity = Annotated[
    PersonEntity
    | OrganisationEntity
    | PhoneEntity
    | EmailEntity
    | VehicleEntity
    | VesselEntity
    | ContainerEntity
    | BankAccountEntity
    | CryptoWalletEntity
    | IdentityDocumentEntity
    | AddressEntity,
    Field(discriminator="kind"),
]
"""One entity; use `list[Entity]` in request models (e.g. `entities: list[Entity] = []`)."""

entity_adapter: TypeAdapter[Entity] = TypeAdapter(Entity)
"""Validates one entity from a dict (e.g. stored JSON): `entity_adapter.validate_python(d)`."""
