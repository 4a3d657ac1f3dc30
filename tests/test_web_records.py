"""The web client's record pages: the filing form (entities, grading, handling, attachments,
errors in French beside their fields, rows added and removed without JavaScript), the
record's page (handling banner, attachments, cases, hits, purpose of access) and search
(purpose, facets, pages) — on the same policy as the API.

Pages are driven with httpx (no browser); the database is shared by the whole run, so
every test files records of its own (unique titles, words and phone numbers).
"""

import re
import uuid
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import delete

from app.models import RecordGrant
from tests.conftest import add_membership, record_body, send, the_event, unit_ids

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8"
    + b"\x00" * 40
    + b"This program cannot be run in DOS mode.\r\r\n$"
)
PURPOSE = "Vérification dans le cadre de l'enquête"
RECORD_PATH = re.compile(r"^/renseignements/([0-9a-f-]{36})$")
RESULT = re.compile(r'<a href="/renseignements/[0-9a-f-]{36}">')


def word(prefix: str = "mot") -> str:
    """A word no other test uses, letters only (the French text parser keeps it whole)."""
    return prefix + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


def mobile() -> tuple[str, str]:
    """A French mobile number of this test only: (national format, E.164)."""
    digits = "12" + f"{uuid.uuid4().int % 10**6:06d}"  # 06 12…: a valid mobile range
    national = "06 " + " ".join(digits[i : i + 2] for i in range(0, 8, 2))
    return national, "+336" + digits


async def send_form(user, path: str, fields: list[tuple[str, str]], files=None):
    """POST a form as the browser does, with the session's CSRF token (repeated fields
    kept); multipart when `files` are given."""
    data: dict[str, list[str]] = {"csrf_token": [user.csrf_token]}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return await user.client.post(path, data=data, files=files)


def record_fields(title: str, **changes: str) -> list[tuple[str, str]]:
    """A valid filing form: graded B2, cocaine, in Marseille, on 12/10/2026 at 22:30."""
    fields = {
        "title": title,
        "narrative": "Livraison de cocaïne observée sur le parking du port.",
        "occurred_at": "2026-10-12T22:30",
        "commune": "Marseille",
        "departement": "13",
        "source_reliability": "B",
        "information_assessment": "2",
        "handling_code": "H0",
        "marking": "NP",
        "scope": "unit",
        "tags": "",
    }
    fields.update(changes)
    return [*fields.items(), ("drug_types", "cocaine")]


async def file_through_form(user, fields, files=None) -> str:
    """File a record through the form (asserting success): its id."""
    answer = await send_form(user, "/renseignements/nouveau", fields, files)
    assert answer.status_code == 303, answer.text
    return RECORD_PATH.match(answer.headers["location"])[1]


def field_error(html: str, name: str) -> str:
    """The error shown beside field `name`, asserting the field points at it."""
    match = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', html)
    assert match, f"no error beside {name}"
    field = re.search(rf'<(?:input|select|textarea|fieldset)[^>]*\bid="{name}"[^>]*>', html)
    assert field, f"no field {name}"
    assert re.search(rf'aria-describedby="[^"]*\b{name}-error\b', field[0]), field[0]
    return unescape(match[1])


def text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


# --- filing -----------------------------------------------------------------------------


async def test_the_form_offers_every_part_of_a_record(web):
    page = await (await web("cross13.police")).get("/renseignements/nouveau")
    assert page.status_code == 200
    html = page.text
    assert 'enctype="multipart/form-data"' in html
    assert '<input type="datetime-local" id="occurred_at" name="occurred_at"' in html
    for legend in ("Fiabilité de la source", "Appréciation de l'information", "Marquage"):
        assert re.search(rf"<legend>{re.escape(legend)}", unescape(html)), legend
    assert "Source le plus souvent fiable" in unescape(html)
    assert "Ne pas transmettre sans l'accord" in unescape(html)
    assert 'for="handling_note">Précisions (H3)' in html
    assert "classifiés" in html and "refusés" in html
    assert "Tous les membres de votre unité le verront" in unescape(html)
    assert '<input type="file" id="attachments" name="attachments" multiple' in html
    # One template per kind of entity, for the script; the same buttons submit without it.
    kinds = set(re.findall(r'<template data-entity-template="([a-z_]+)">', html))
    assert len(kinds) == 11 and {"person", "phone", "bank_account", "address"} <= kinds
    assert 'name="entities-__i__-number"' in html
    assert 'name="action" value="add_entity"' in html
    # A member of one unit is not asked for the origin unit.
    assert 'name="unit_id"' not in html
    # Enter files the record: the first submit button of the form is the filing one.
    first_button = re.search(r"<button[^>]*>([^<]*)", html.split("data-record-form")[1])
    assert first_button[1] == "Enregistrer le renseignement"


async def test_filed_record_is_on_its_page_and_found_by_its_phone(web):
    user = await web("cross13.police")
    title = f"Point de deal {word()}"
    national, e164 = mobile()
    fields = record_fields(title, tags="cité, guetteurs") + [
        ("entities-0-kind", "phone"),
        ("entities-0-number", national),
        ("entities-1-kind", "person"),
        ("entities-1-surname", "Bellanger"),
        ("entities-1-given_names", "Marius"),
        ("entities-1-aliases", "Le Grand, Mimi"),
        ("entities-1-birth_date", "1990-02-03"),
    ]
    record_id = await file_through_form(user, fields)

    page = await user.get(f"/renseignements/{record_id}")
    assert page.status_code == 200
    shown = text_of(page.text)
    assert title in shown and "Fiche renseignement" in shown
    assert "B2" in shown
    assert "Source le plus souvent fiable" in shown and "Connue personnellement" in shown
    assert "12/10/2026 22:30" in shown  # Paris time typed, Paris time shown
    assert "Cocaïne" in shown and "Marseille (13)" in shown
    assert "cité, guetteurs" in shown
    assert national in shown
    assert "Alias : Le Grand, Mimi" in shown and "03/02/1990" in shown
    assert "cross13.police (Police nationale)" in shown
    assert 'class="banner"' not in page.text  # H0, NP: nothing to warn about

    found = await user.get("/recherche", params={"selector": national, "purpose": PURPOSE})
    assert found.status_code == 200
    assert f'href="/renseignements/{record_id}' in found.text
    by_e164 = await user.get("/recherche", params={"selector": e164, "purpose": PURPOSE})
    assert f'href="/renseignements/{record_id}' in by_e164.text


async def test_invalid_form_comes_back_with_everything_typed_and_french_errors(web):
    user = await web("cross13.police")
    narrative = f"Récit {word()} à garder tel quel."
    fields = [
        ("title", "Go"),
        ("narrative", narrative),
        ("occurred_at", "2026-10-12T22:30"),
        ("commune", "Aubagne"),
        ("departement", "13"),
        ("information_assessment", "3"),
        ("handling_code", "H1"),
        ("marking", "DR"),
        ("scope", "chain"),
        ("tags", "quai, nuit"),
        ("drug_types", "heroin"),
        ("entities-0-kind", "phone"),
        ("entities-0-number", "06 12"),
        ("entities-1-kind", "email"),
        ("entities-1-address", "guetteur@example.org"),
    ]
    answer = await send_form(user, "/renseignements/nouveau", fields)
    assert answer.status_code == 422
    html = answer.text
    summary = re.search(r'<div class="error-summary" role="alert"[^>]*>(.*?)</div>', html, re.S)
    assert summary and 'href="#title"' in summary[1]
    assert 'href="#source_reliability-A"' in summary[1]
    assert 'href="#entities-0-number"' in summary[1]
    assert field_error(html, "title") == "Trop court : au moins 3 caractères."
    assert field_error(html, "source_reliability") == "Ce champ est obligatoire."
    assert field_error(html, "entities-0-number") == (
        "Numéro de téléphone invalide pour le pays indiqué."
    )
    assert re.search(r'id="title"[^>]*aria-invalid="true"', html)
    # Everything typed is kept, entity rows included.
    assert 'value="Go"' in html and narrative in unescape(html)
    assert 'value="Aubagne"' in html and 'value="quai, nuit"' in html
    assert 'value="2026-10-12T22:30"' in html
    assert re.search(r'id="information_assessment-3"[^>]*checked', html)
    assert re.search(r'id="handling_code-H1"[^>]*checked', html)
    assert re.search(r'id="marking-DR"[^>]*checked', html)
    assert re.search(r'id="scope-chain"[^>]*checked', html)
    assert re.search(r'id="drug_types-heroin"[^>]*checked', html)
    assert re.search(r'id="entities-0-number"[^>]*value="06 12"', html)
    assert re.search(r'id="entities-1-address"[^>]*value="guetteur@example.org"', html)
    # Nothing was filed.
    found = await user.get("/recherche", params={"q": narrative.split()[1]})
    assert "Aucun renseignement ne correspond" in found.text


async def test_h3_needs_its_note(web):
    user = await web("cross13.police")
    title = f"Source sensible {word()}"
    refused = await send_form(
        user, "/renseignements/nouveau", record_fields(title, handling_code="H3")
    )
    assert refused.status_code == 422
    assert field_error(refused.text, "handling_note").startswith("Obligatoire avec le code H3")
    note = "Ne pas exploiter avant le 30/11, accord du magistrat requis."
    record_id = await file_through_form(
        user, record_fields(title, handling_code="H3", handling_note=note)
    )
    page = await user.get(f"/renseignements/{record_id}")
    banner = re.search(r'<div class="banner" role="note"[^>]*>(.*?)</div>', page.text, re.S)
    assert banner
    assert (
        text_of(banner[1]).strip() == f"Code de traitement H3 : restrictions particulières — {note}"
    )


async def test_handling_banner_for_h2_and_dr(web):
    user = await web("cross13.police")
    h2 = await file_through_form(user, record_fields(f"Rendez-vous {word()}", handling_code="H2"))
    dr = await file_through_form(user, record_fields(f"Entrepôt {word()}", marking="DR"))
    plain = await file_through_form(user, record_fields(f"Guetteurs {word()}"))
    banner = re.compile(r'<div class="banner" role="note"[^>]*>(.*?)</div>', re.S)
    h2_banner = banner.search((await user.get(f"/renseignements/{h2}")).text)
    assert (
        text_of(h2_banner[1])
        .strip()
        .startswith("Code de traitement H2 : ne pas transmettre sans l'accord de l'unité d'origine")
    )
    dr_banner = banner.search((await user.get(f"/renseignements/{dr}")).text)
    assert "Diffusion restreinte (DR)" in text_of(dr_banner[1])
    assert banner.search((await user.get(f"/renseignements/{plain}")).text) is None


async def test_entity_rows_are_added_and_removed_without_javascript(web):
    user = await web("cross13.police")
    title = f"Brouillon {word()}"
    added = await send_form(
        user,
        "/renseignements/nouveau",
        record_fields(title) + [("action", "add_entity"), ("new_entity_kind", "vehicle")],
    )
    assert added.status_code == 200
    assert re.search(r'<input type="hidden" name="entities-0-kind" value="vehicle">', added.text)
    assert re.search(r'id="entities-0-plate"[^>]*autofocus', added.text)
    assert f'value="{title}"' in added.text and 'class="field-error"' not in added.text

    rows = [
        ("entities-0-kind", "vehicle"),
        ("entities-0-plate", "AB-123-CD"),
        ("entities-3-kind", "email"),  # a row the script added: indexes may leave gaps
        ("entities-3-address", "nourrice@example.org"),
    ]
    removed = await send_form(
        user,
        "/renseignements/nouveau",
        record_fields(title) + rows + [("action", "remove_entity:0")],
    )
    assert removed.status_code == 200
    assert "AB-123-CD" not in removed.text
    assert re.search(r'id="entities-0-address"[^>]*value="nourrice@example.org"', removed.text)
    assert 'id="entities-1-' not in removed.text
    assert re.search(r'id="new_entity_kind"[^>]*autofocus', removed.text)
    by_its_index = await send_form(
        user,
        "/renseignements/nouveau",
        record_fields(title) + rows + [("action", "remove_entity:3")],
    )
    assert "nourrice@example.org" not in by_its_index.text
    assert re.search(r'id="entities-0-plate"[^>]*value="AB-123-CD"', by_its_index.text)
    assert f'value="{title}"' in removed.text
    # Neither step filed anything.
    found = await user.get("/recherche", params={"q": title.split()[1]})
    assert "Aucun renseignement ne correspond" in found.text


async def test_a_member_of_several_units_chooses_the_origin_unit(web, client, auth, new_user):
    user, password = await new_user("gendarmerie", "CROSS-13", "officer")
    admin = await auth("admin")
    units = await unit_ids(client, admin)
    await add_membership(client, admin, user["id"], units["CROSS-83"])
    officer = await web(user["username"], password)
    form = await officer.get("/renseignements/nouveau")
    assert '<label for="unit_id">Unité d\'origine (obligatoire)</label>' in unescape(form.text)
    assert f'<option value="{units["CROSS-83"]}">CROSS-83</option>' in form.text
    title = f"Double appartenance {word()}"
    refused = await send_form(officer, "/renseignements/nouveau", record_fields(title))
    assert refused.status_code == 422
    assert field_error(refused.text, "unit_id") == "Choisissez l'une de vos unités."
    record_id = await file_through_form(officer, record_fields(title, unit_id=units["CROSS-83"]))
    page = await officer.get(f"/renseignements/{record_id}")
    assert re.search(r"<dt>Unité d'origine</dt>\s*<dd>CROSS-83</dd>", unescape(page.text))


# --- attachments ------------------------------------------------------------------------


async def test_attachments_filed_with_the_record_and_added_later_download(web):
    user = await web("cross13.police")
    title = f"Photos surveillance {word()}"
    content = PDF + word().encode()
    record_id = await file_through_form(
        user,
        record_fields(title),
        files=[("attachments", ("pv-surveillance.pdf", content, "application/pdf"))],
    )
    later = "Note de synthèse ".encode() + word().encode()
    answer = await send_form(
        user,
        f"/renseignements/{record_id}/pieces",
        [],
        files=[("attachments", ("synthèse.txt", later, "text/plain"))],
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/renseignements/{record_id}#pieces"

    page = await user.get(f"/renseignements/{record_id}")
    links = dict(
        (unescape(name), href)
        for href, name in re.findall(
            r'<a href="(/renseignements/[^"]+/pieces/[^"]+)">([^<]+)</a>', page.text
        )
    )
    assert set(links) == {"pv-surveillance.pdf", "synthèse.txt"}
    first = await user.get(links["pv-surveillance.pdf"])
    assert first.status_code == 200 and first.content == content
    assert first.headers["content-disposition"].startswith("attachment;")
    assert first.headers["x-content-type-options"] == "nosniff"
    second = await user.get(links["synthèse.txt"])
    assert second.status_code == 200 and second.content == later


async def test_a_refused_attachment_files_nothing(web, settings):
    user = await web("cross13.police")
    title = f"Pièce refusée {word()}"
    attachments = Path(settings.data_dir) / "attachments"
    before = {p for p in attachments.rglob("*") if p.is_file()} if attachments.exists() else set()
    answer = await send_form(
        user,
        "/renseignements/nouveau",
        record_fields(title),
        files=[
            ("attachments", ("rapport.pdf", PDF + word().encode(), "application/pdf")),
            ("attachments", ("outil.pdf", EXE + word().encode(), "application/pdf")),
        ],
    )
    assert answer.status_code == 415
    assert "« outil.pdf » : type de fichier refusé" in field_error(answer.text, "attachments")
    assert f'value="{title}"' in answer.text
    assert "sélectionnez-les de nouveau" in answer.text
    found = await user.get("/recherche", params={"q": title.split()[-1]})
    assert "Aucun renseignement ne correspond" in found.text
    # The refused file left nothing on disk (the accepted one may stay, as documented).
    after = {p for p in attachments.rglob("*") if p.is_file()}
    assert len(after - before) <= 1


async def test_upload_refused_on_the_record_page_stores_nothing(web):
    user = await web("cross13.police")
    record_id = await file_through_form(user, record_fields(f"Ajout refusé {word()}"))
    answer = await send_form(
        user,
        f"/renseignements/{record_id}/pieces",
        [],
        files=[("attachments", ("outil.exe", EXE, "application/octet-stream"))],
    )
    assert answer.status_code == 415
    assert "type de fichier refusé" in field_error(answer.text, "attachments")
    assert "Aucune pièce jointe." in answer.text


# --- the record's page: visibility, purpose, cases, hits ----------------------------------


async def test_agency_record_of_customs_is_invisible_to_the_police_officer(web):
    douane = await web("cross13.douane")
    police = await web("cross13.police")
    marker = word("douane")
    title = f"Conteneur suspect {marker}"
    record_id = await file_through_form(douane, record_fields(title, scope="agency"))
    assert (await douane.get(f"/renseignements/{record_id}")).status_code == 200

    page = await police.get(f"/renseignements/{record_id}")
    assert page.status_code == 404 and title not in page.text
    download = await police.get(f"/renseignements/{record_id}/pieces/{uuid.uuid4()}")
    assert download.status_code == 404
    found = await police.get("/recherche", params={"q": marker})
    assert found.status_code == 200
    assert title not in found.text and record_id not in found.text
    assert "Aucun renseignement ne correspond" in found.text
    assert "Affiner" not in found.text  # no facet counts it
    theirs = await douane.get("/recherche", params={"q": marker})
    assert record_id in theirs.text and 'href="/recherche?q=' in theirs.text


async def test_a_granted_read_asks_for_a_purpose(web, client, auth, db):
    police = await auth("cross13.police")
    filed = await client.post("/api/v1/records", headers=police, json=record_body(word("Grant")))
    assert filed.status_code == 201, filed.text
    record_id = filed.json()["id"]
    upload = await client.post(
        f"/api/v1/records/{record_id}/attachments",
        headers=police,
        files={"file": ("pv.pdf", PDF, "application/pdf")},
    )
    assert upload.status_code == 201, upload.text
    cross83 = (await unit_ids(client, police))["CROSS-83"]
    async with db.sessionmaker() as session, session.begin():
        session.add(
            RecordGrant(
                record_id=uuid.UUID(record_id), unit_id=uuid.UUID(cross83), reason="access_request"
            )
        )
    try:
        viewer = await web("cross83.police")
        asked = await viewer.get(f"/renseignements/{record_id}")
        assert asked.status_code == 428
        assert '<label for="purpose">Motif de consultation</label>' in asked.text
        assert f'action="/renseignements/{record_id}"' in asked.text
        short = await viewer.get(f"/renseignements/{record_id}", params={"purpose": "court"})
        assert short.status_code == 422 and 'aria-invalid="true"' in short.text
        page, request_id = await send(
            viewer.client, "GET", f"/renseignements/{record_id}", params={"purpose": PURPOSE}
        )
        assert page.status_code == 200
        event = await the_event(db, request_id, "record.read")
        assert event["object_id"] == record_id and event["purpose"] == PURPOSE
        assert event["details"]["through_grant"] is True
        link = re.search(r'<a href="(/renseignements/[^"]+/pieces/[^"]+)">pv.pdf</a>', page.text)
        href = unescape(link[1])
        assert parse_qs(urlsplit(href).query)["purpose"] == [PURPOSE]
        assert (await viewer.get(href)).status_code == 200
        assert (await viewer.get(urlsplit(href).path)).status_code == 428
    finally:
        async with db.sessionmaker() as session, session.begin():
            await session.execute(
                delete(RecordGrant).where(RecordGrant.record_id == uuid.UUID(record_id))
            )


async def test_record_linked_to_a_case_from_its_page(web, client, auth):
    user = await web("cross13.police")
    record_id = await file_through_form(user, record_fields(f"À rattacher {word()}"))
    case_title = f"Réseau du Vieux-Port {word()}"
    case = await client.post(
        "/api/v1/cases",
        headers=await auth("cross13.police"),
        json={"title": case_title, "summary": "Trafic de cocaïne."},
    )
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    page = await user.get(f"/renseignements/{record_id}")
    assert f'<option value="{case_id}">' in page.text
    linked = await send_form(user, f"/renseignements/{record_id}/dossier", [("case_id", case_id)])
    assert linked.status_code == 303 and linked.headers["location"] == f"/dossiers/{case_id}"
    page = await user.get(f"/renseignements/{record_id}")
    assert f'<a href="/dossiers/{case_id}">' in page.text
    assert f'<option value="{case_id}">' not in page.text  # already linked
    # A case it does not see lists nothing for an officer of another unit.
    other = await web("cross83.police")
    assert (
        await send_form(other, f"/renseignements/{record_id}/dossier", [("case_id", case_id)])
    ).status_code == 404


async def test_deconfliction_hit_on_the_record_page(web, client, auth):
    user = await web("cross13.police")
    national, e164 = mobile()
    record_id = await file_through_form(
        user,
        record_fields(f"Ligne partagée {word()}")
        + [("entities-0-kind", "phone"), ("entities-0-number", national)],
    )
    other = await client.post(
        "/api/v1/records",
        headers=await auth("cross59.douane"),
        json=record_body(word("Nord"), entities=[{"kind": "phone", "number": e164}]),
    )
    assert other.status_code == 201, other.text
    page = await user.get(f"/renseignements/{record_id}")
    section = re.search(r'id="h-hits">.*?</section>', page.text, re.S)[0]
    shown = text_of(section)
    assert "Concordance sur téléphone" in shown and "CROSS-59 (Douane)" in shown
    assert national not in shown and e164 not in shown


# --- search -----------------------------------------------------------------------------


async def test_selector_search_asks_for_a_purpose(web):
    user = await web("cross13.police")
    national, _ = mobile()
    asked = await user.get("/recherche", params={"selector": national, "q": "port"})
    assert asked.status_code == 428
    assert field_error(asked.text, "search-purpose").startswith("Indiquez un motif de consultation")
    assert f'value="{national}"' in asked.text and 'value="port"' in asked.text
    wrong = await user.get("/recherche", params={"selector": national, "purpose": "court"})
    assert wrong.status_code == 422
    assert field_error(wrong.text, "search-purpose").startswith("Motif non valide")
    assert 'value="court"' in wrong.text
    given = await user.get("/recherche", params={"selector": national, "purpose": PURPOSE})
    assert given.status_code == 200 and "Aucun renseignement ne correspond" in given.text


async def test_empty_search_shows_the_form_only(web):
    page = await (await web("cross13.police")).get("/recherche")
    assert page.status_code == 200
    assert '<label for="search-q">Texte libre</label>' in page.text
    assert "Identifiant (téléphone, IBAN, plaque…)" in page.text
    assert '<label for="search-person">Nom, prénoms</label>' in page.text
    assert 'id="h-results"' not in page.text


async def test_search_facets_add_a_filter_and_pages_follow(web, client, auth):
    user = await web("cross13.police")
    headers = await auth("cross13.police")
    marker = word("facette")
    for n in range(26):
        body = record_body(f"{marker} numéro {n}", drug_types=["heroin" if n < 3 else "cocaine"])
        assert (await client.post("/api/v1/records", headers=headers, json=body)).status_code == 201
    first = await user.get("/recherche", params={"q": marker})
    assert "26 renseignements trouvés" in first.text
    assert len(RESULT.findall(first.text)) == 25
    facets = dict(
        (unescape(name), unescape(href))
        for href, name in re.findall(r'<li><a href="(/recherche\?[^"]+)">([^<]+)</a>', first.text)
    )
    assert parse_qs(urlsplit(facets["Héroïne"]).query) == {"q": [marker], "drug_type": ["heroin"]}
    heroin = await user.get(facets["Héroïne"])
    assert "3 renseignements trouvés" in heroin.text
    next_page = unescape(
        re.search(r'<a href="([^"]+)" rel="next">Page suivante</a>', first.text)[1]
    )
    assert parse_qs(urlsplit(next_page).query)["q"] == [marker]
    second = await user.get(next_page)
    assert len(RESULT.findall(second.text)) == 1
    assert "Page suivante" not in second.text
