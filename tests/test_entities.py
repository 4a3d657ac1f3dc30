"""Entity validation and selector normalisation: pure unit tests, no database."""

from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ValidationError

from app.schemas.entities import Entity, PersonEntity, entity_adapter
from app.services.entities import (
    SELECTOR_TYPES,
    entity_names,
    fold,
    mask,
    search_selectors,
    selectors,
)

IBAN = "FR76 3000 6000 0112 3456 7890 189"
BITCOIN = "1NEDqZPvTWRaoho48qXuLLsrYomMXPABfD"
ETHEREUM = "0x52908400098527886E0F7030069857D2E4169EE7"
TRON = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
MONERO = (
    "44AFFq5kSiGBoZ4NMDwYtN18obc8AemS33DBLWs3H7otXft3XjrpDtQGv7"
    "SqSsaBYBb98uNbr2VBBEt7f2wfn3RVGQBEP3A"
)


class Body(BaseModel):
    entities: list[Entity] = []


def sel(data: dict[str, Any]) -> list[tuple[str, str]]:
    return selectors(entity_adapter.validate_python(data))


def error_locs(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as info:
        Body(entities=[{"kind": "person", "surname": "Valid"}, data])
    return [err["loc"] for err in info.value.errors()]


# --- each kind: valid input → selectors -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"kind": "person", "surname": "Lefèvre-Dupont", "given_names": "Jean  Hélène",
             "birth_date": "1980-02-03", "nationality": "fr"},
            [("person", "LEFEVRE DUPONT|JEAN HELENE|1980-02-03"),
             ("person_name", "LEFEVRE DUPONT|JEAN HELENE")],
        ),
        ({"kind": "person", "surname": "Ñúñez"}, [("person_name", "NUNEZ|")]),
        (
            {"kind": "organisation", "name": "Société  Générale", "org_kind": "company",
             "siren": "552 120 222"},
            [("organisation", "SOCIETE GENERALE"), ("siren", "552120222")],
        ),
        ({"kind": "organisation", "name": "Clan des Œillets"},
         [("organisation", "CLAN DES OEILLETS")]),
        ({"kind": "phone", "number": "06 12 34 56 78"}, [("phone", "+33612345678")]),
        ({"kind": "phone", "number": "+44 20 7946 0958"}, [("phone", "+442079460958")]),
        ({"kind": "phone", "number": "0470 12 34 56", "region": "be"}, [("phone", "+32470123456")]),
        ({"kind": "email", "address": "Jean.Dupont@Example.ORG"},
         [("email", "jean.dupont@example.org")]),
        ({"kind": "vehicle", "plate": "ab-123-cd"}, [("plate", "FR:AB123CD")]),
        (
            {"kind": "vehicle", "plate": "1-ABC-234", "country": "BE", "vin": "1m8gdm9axkp042788"},
            [("plate", "BE:1ABC234"), ("vin", "1M8GDM9AXKP042788")],
        ),
        ({"kind": "vehicle", "vin": "WVWZZZ1JZXW000001"}, [("vin", "WVWZZZ1JZXW000001")]),
        ({"kind": "vessel", "name": "Ocean Star", "imo": "IMO 9074729"}, [("imo", "9074729")]),
        ({"kind": "container", "number": "csqu 305438 3"}, [("container", "CSQU3054383")]),
        (
            {"kind": "bank_account", "iban": IBAN.lower(), "bic": "bnpa fr pp xxx"},
            [("iban", "FR7630006000011234567890189"), ("bic", "BNPAFRPP")],
        ),
        ({"kind": "bank_account", "iban": IBAN, "bic": "BNPAFRPP123"},
         [("iban", "FR7630006000011234567890189"), ("bic", "BNPAFRPP123")]),
        ({"kind": "crypto_wallet", "chain": "bitcoin", "address": BITCOIN},
         [("crypto_wallet", f"bitcoin:{BITCOIN}")]),
        ({"kind": "crypto_wallet", "chain": "ethereum", "address": ETHEREUM},
         [("crypto_wallet", f"ethereum:{ETHEREUM.lower()}")]),
        ({"kind": "crypto_wallet", "chain": "tron", "address": TRON},
         [("crypto_wallet", f"tron:{TRON}")]),
        ({"kind": "crypto_wallet", "chain": "monero", "address": MONERO},
         [("crypto_wallet", f"monero:{MONERO}")]),
        ({"kind": "crypto_wallet", "chain": "other", "address": "AbC123xyz"},
         [("crypto_wallet", "other:AbC123xyz")]),
        (
            {"kind": "identity_document", "doc_kind": "passport", "number": "12ab 34567",
             "country": "fr"},
            [("identity_document", "FR:PASSPORT:12AB34567")],
        ),
        (
            {"kind": "address", "line": "12, rue de l'Église", "postcode": "13001",
             "commune": "Marseille"},
            [("address", "12 RUE DE L EGLISE|13001|MARSEILLE|FR")],
        ),
        (
            {"kind": "address", "line": "Chemin du Moulin", "commune": "Saint-Étienne-du-Grès"},
            [("address", "CHEMIN DU MOULIN||SAINT ETIENNE DU GRES|FR")],
        ),
    ],
)  # fmt: skip
def test_valid_entities_normalise_to_selectors(data, expected):
    assert sel(data) == expected
    assert {type_ for type_, _ in expected} <= set(SELECTOR_TYPES)


def test_models_keep_values_as_filed():
    entity = entity_adapter.validate_python({"kind": "bank_account", "iban": f"  {IBAN} "})
    assert entity.iban == IBAN
    phone = entity_adapter.validate_python({"kind": "phone", "number": "06 12 34 56 78"})
    assert (phone.region, phone.number) == ("FR", "06 12 34 56 78")


# --- invalid identifiers: the error points at the field ---------------------------------


@pytest.mark.parametrize(
    ("data", "field", "error_type"),
    [
        ({"kind": "bank_account", "iban": "FR76 3000 6000 0112 3456 7890 188"}, "iban",
         "invalid_iban"),
        ({"kind": "bank_account", "iban": IBAN, "bic": "BNPA1RPP"}, "bic", "invalid_bic"),
        ({"kind": "container", "number": "CSQU3054384"}, "number", "invalid_container"),
        ({"kind": "vessel", "imo": "IMO 9074728"}, "imo", "invalid_imo"),
        ({"kind": "vessel", "imo": "IMO 907472"}, "imo", "invalid_imo"),
        ({"kind": "phone", "number": "not a phone"}, "number", "invalid_phone"),
        ({"kind": "phone", "number": "06 12 34"}, "number", "invalid_phone"),
        ({"kind": "phone", "number": "06 12 34 56 78", "region": "FRA"}, "region",
         "string_pattern_mismatch"),
        ({"kind": "organisation", "name": "X", "siren": "732 829 321"}, "siren", "invalid_siren"),
        ({"kind": "email", "address": "jean.dupont@"}, "address", "invalid_email"),
        ({"kind": "email", "address": "jean dupont@example.org"}, "address", "invalid_email"),
        ({"kind": "vehicle", "vin": "1M8GDM9A1KP042788"}, "vin", "invalid_vin"),
        ({"kind": "vehicle", "vin": "WVWZZZ1JZXW00000I"}, "vin", "invalid_vin"),
        ({"kind": "vehicle", "vin": "WVWZZZ1JZXW0001"}, "vin", "invalid_vin"),
        ({"kind": "vehicle", "plate": "AB#123"}, "plate", "invalid_plate"),
        ({"kind": "crypto_wallet", "chain": "bitcoin", "address": BITCOIN[:-1] + "X"}, "address",
         "invalid_crypto_address"),
        ({"kind": "crypto_wallet", "chain": "ethereum", "address": "0x1234"}, "address",
         "invalid_crypto_address"),
        ({"kind": "crypto_wallet", "chain": "tron", "address": BITCOIN}, "address",
         "invalid_crypto_address"),
        ({"kind": "identity_document", "doc_kind": "passport", "number": "12AB34567",
          "country": "France"}, "country", "string_pattern_mismatch"),
        ({"kind": "identity_document", "doc_kind": "visa", "number": "1", "country": "FR"},
         "doc_kind", "literal_error"),
        ({"kind": "person", "surname": "Dupont", "birth_date": "1980-13-01"}, "birth_date",
         "date_from_datetime_parsing"),
        ({"kind": "person", "surname": " "}, "surname", "string_too_short"),
        ({"kind": "address", "line": "1 rue X", "commune": "Lyon", "zip": "69001"}, "zip",
         "extra_forbidden"),
    ],
)  # fmt: skip
def test_invalid_identifiers_point_at_the_field(data, field, error_type):
    with pytest.raises(ValidationError) as info:
        Body(entities=[{"kind": "person", "surname": "Valid"}, data])
    errors = info.value.errors()
    assert [err["loc"] for err in errors] == [("entities", 1, data["kind"], field)]
    assert errors[0]["type"] == error_type


def test_vehicle_needs_plate_or_vin_at_entity_level():
    assert error_locs({"kind": "vehicle", "country": "FR"}) == [("entities", 1, "vehicle")]


def test_unknown_or_missing_kind_points_at_the_item():
    assert error_locs({"kind": "drone"}) == [("entities", 1)]
    assert error_locs({"number": "06 12 34 56 78"}) == [("entities", 1)]


async def test_request_validation_loc_shape():
    api = FastAPI()

    @api.post("/records")
    def create(body: Body) -> dict[str, int]:
        return {"entities": len(body.entities)}

    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        phone = {"kind": "phone", "number": "0612345678"}
        ok = await http.post("/records", json={"entities": [phone]})
        assert ok.status_code == 200
        bad = await http.post(
            "/records",
            json={"entities": [{"kind": "email", "address": "a@b.org"},
                               {"kind": "bank_account", "iban": "FR7630006000011234567890188"}]},
        )  # fmt: skip
    assert bad.status_code == 422
    assert [err["loc"] for err in bad.json()["detail"]] == [
        ["body", "entities", 1, "bank_account", "iban"]
    ]


# --- search -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06 12 34 56 78", [("phone", "+33612345678")]),
        ("0612345678", [("phone", "+33612345678")]),
        ("+33 6 12 34 56 78", [("phone", "+33612345678")]),
        ("0044 20 7946 0958", [("phone", "+442079460958")]),
        (IBAN, [("iban", "FR7630006000011234567890189")]),
        ("  fr7630006000011234567890189 ", [("iban", "FR7630006000011234567890189")]),
        ("IMO 9074729", [("imo", "9074729")]),
        ("CSQU 305438 3", [("container", "CSQU3054383")]),
        ("Jean.Dupont@Example.ORG", [("email", "jean.dupont@example.org")]),
        ("1M8GDM9AXKP042788", [("vin", "1M8GDM9AXKP042788")]),
        ("AB-123-CD", [("plate", "FR:AB123CD")]),
        ("ab 123 cd", [("plate", "FR:AB123CD")]),
        ("1234 AB 75", [("plate", "FR:1234AB75")]),
        (BITCOIN, [("crypto_wallet", f"bitcoin:{BITCOIN}")]),
        (ETHEREUM, [("crypto_wallet", f"ethereum:{ETHEREUM.lower()}")]),
        (TRON, [("crypto_wallet", f"tron:{TRON}")]),
        # ambiguous: a SIREN that is also a valid French mobile number read without its 0
        ("732 829 320", [("phone", "+33732829320"), ("siren", "732829320")]),
        ("Dupont", []),
        ("", []),
        ("   ", []),
    ],
)
def test_search_selectors(raw, expected):
    assert search_selectors(raw) == expected


def test_search_matches_what_filing_yields():
    filed = sel({"kind": "phone", "number": "+33 (0)6 12 34 56 78"})
    assert filed == search_selectors("06.12.34.56.78")


# --- folding, names, masks --------------------------------------------------------------


def test_person_folding_accents_case_hyphens():
    a = sel({"kind": "person", "surname": "N'Diaye-Lefèvre", "given_names": "José  Maria",
             "birth_date": date(1990, 5, 17)})  # fmt: skip
    b = sel({"kind": "person", "surname": "n'diaye   lefevre", "given_names": "JOSE-MARIA",
             "birth_date": "1990-05-17"})  # fmt: skip
    assert (
        a
        == b
        == [
            ("person", "N'DIAYE LEFEVRE|JOSE MARIA|1990-05-17"),
            ("person_name", "N'DIAYE LEFEVRE|JOSE MARIA"),
        ]
    )
    assert fold("Strauß – Œdipe | Ørsted") == "STRAUSS OEDIPE ORSTED"


def test_person_without_birth_date_yields_only_the_name():
    assert sel({"kind": "person", "surname": "Martin", "given_names": "Léa"}) == [
        ("person_name", "MARTIN|LEA")
    ]


def names(data: dict[str, Any]) -> list[str]:
    return entity_names(entity_adapter.validate_python(data))


def test_entity_names():
    person = {"kind": "person", "surname": "Dupont", "given_names": "Jean  Pierre",
              "aliases": ["Le Gitan", "Le Gitan", "JP"]}  # fmt: skip
    assert isinstance(entity_adapter.validate_python(person), PersonEntity)
    assert names(person) == ["Jean Pierre Dupont", "Le Gitan", "JP"]
    assert names({"kind": "vessel", "name": "Ocean Star", "imo": "9074729"}) == ["Ocean Star"]
    assert names({"kind": "vessel", "imo": "9074729"}) == []
    assert names({"kind": "organisation", "name": "SARL Sud"}) == ["SARL Sud"]
    assert names({"kind": "address", "line": "1 quai du Port", "commune": "Sète"}) == ["Sète"]
    assert names({"kind": "phone", "number": "0612345678"}) == []


@pytest.mark.parametrize(
    ("type_", "value", "expected"),
    [
        ("phone", "+33612345678", "+33 6 •• •• •• 78"),
        ("iban", "FR7630006000011234567890189", "FR•• •••• •••• •••• •••• •••0 189"),
        ("email", "jean.dupont@example.org", "je•••••••••••••••••••rg"),
        ("container", "CSQU3054383", "CS•••••••83"),
        ("plate", "FR:AB123CD", "FR:A•••••D"),
        ("crypto_wallet", f"bitcoin:{BITCOIN}", "bitcoin:1N" + "•" * 30 + "fD"),
        ("identity_document", "FR:PASSPORT:12AB34567", "FR:PASSPORT:12•••••67"),
        ("imo", "9074729", "9•••••9"),
        ("bic", "BNP", "•••"),
    ],
)
def test_mask(type_, value, expected):
    assert mask(type_, value) == expected


def test_masks_hide_the_middle_of_every_selector():
    entities = [
        {"kind": "person", "surname": "Dupont", "given_names": "Jean", "birth_date": "1980-01-01"},
        {"kind": "bank_account", "iban": IBAN, "bic": "BNPAFRPP"},
        {"kind": "phone", "number": "+44 20 7946 0958"},
        {"kind": "vehicle", "plate": "AB-123-CD", "vin": "WVWZZZ1JZXW000001"},
    ]
    for data in entities:
        for type_, value in sel(data):
            masked = mask(type_, value)
            assert masked != value and "•" in masked, (type_, value, masked)
