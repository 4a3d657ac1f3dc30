"""The web client's cases, escalation queue and unit tree: a case opened, worked and
escalated from CROSS-13 up through the Marseille antenne to OFAST, entirely through the
pages, on the same services and policy as the API."""

import re
import uuid
from html import unescape
from html.parser import HTMLParser

import conftest
from conftest import record_body
from sqlalchemy import text

CASE_URL = re.compile(r"^/dossiers/([0-9a-f-]{36})$")


def unique(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


async def open_case(user, title: str, **fields) -> str:
    """Open a case through the form; its id."""
    answer = await user.post("/dossiers", data={"title": title, "priority": "high", **fields})
    assert answer.status_code == 303, answer.text
    return CASE_URL.match(answer.headers["location"]).group(1)


async def file_record(client, headers, title: str, **changes) -> str:
    response = await client.post(
        "/api/v1/records", headers=headers, json=record_body(title, **changes)
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def queue_item(page: str, reference: str) -> tuple[str, str]:
    """The escalation id and HTML of the queue item of a case."""
    for match in re.finditer(r'<li id="escalade-([0-9a-f-]{36})"[^>]*>(.*?)</li>', page, re.S):
        if reference in match.group(2):
            return match.group(1), match.group(0)
    raise AssertionError(f"{reference} is not in the queue")


async def decide(user, escalation_id: str, decision: str, note: str):
    """Decide an escalation from the review queue."""
    return await user.post(
        f"/escalades/{escalation_id}/decision", data={"decision": decision, "note": note}
    )


def reference_of(page: str) -> str:
    return re.search(r"<h1>Dossier (\S+) — ", page).group(1)


def section(page: str, anchor: str) -> str:
    """The HTML of the page's <section id=anchor>."""
    start = page.index(f'id="{anchor}"')
    return page[start : page.index("</section>", start)]


async def test_a_case_goes_from_cross13_up_to_ofast(web, client, auth):
    """Opened and linked at CROSS-13, escalated to the antenne, passed on to OFAST,
    accepted there: every step through the pages, the decision shown on the case."""
    chef = await web("cross13.chef")
    title = unique("Filière cocaïne du port")
    case_id = await open_case(chef, title, summary="Conteneurs en provenance d'Équateur.")
    page = await chef.get(f"/dossiers/{case_id}")
    assert page.status_code == 200
    reference = reference_of(page.text)
    assert reference.startswith("CROSS13-")
    assert "Haute" in page.text and "cross13.chef" in page.text  # priority, lead

    listed = await chef.get("/dossiers", params={"q": title})
    assert reference in listed.text and f'href="/dossiers/{case_id}"' in listed.text

    record_id = await file_record(client, await auth("cross13.police"), unique("Livraison"))
    answer = await chef.post(f"/dossiers/{case_id}/renseignements", data={"record_id": record_id})
    assert answer.status_code == 303
    page = await chef.get(f"/dossiers/{case_id}")
    assert f"/renseignements/{record_id}?purpose={reference}" in page.text
    assert "Renseignement rattaché" in section(page.text, "timeline")

    answer = await chef.post(
        f"/dossiers/{case_id}/escalade",
        data={"justification": "Ramifications dans le Var et le Nord.", "priority": "urgent"},
    )
    assert answer.status_code == 303 and answer.headers["location"].startswith(
        f"/dossiers/{case_id}"
    )
    page = await chef.get(f"/dossiers/{case_id}")
    escalations = section(page.text, "escalate")
    assert "CROSS-13 → ANT-MARSEILLE" in escalations and "En attente" in escalations
    assert "Escaladé" in page.text
    assert 'action="/dossiers/' + case_id + '/escalade"' not in page.text  # escalated already

    marseille = await web("marseille.chef")
    queue = await marseille.get("/escalades")
    assert queue.status_code == 200
    escalation_id, item = queue_item(queue.text, reference)
    # The case page sends whoever decides, and only them, to the queue.
    to_queue = f'href="/escalades#escalade-{escalation_id}"'
    assert to_queue in (await marseille.get(f"/dossiers/{case_id}")).text
    assert to_queue not in page.text
    assert title in item and "Ramifications dans le Var" in item and "cross13.chef" in item
    assert "Priorité urgente" in item and "à l'instant" in unescape(item)  # its age
    assert 'value="forward"' in item and "(OFAST)" in item
    answer = await decide(marseille, escalation_id, "forward", "Dimension nationale : à l'OFAST.")
    assert answer.status_code == 303
    confirmation = await marseille.get(answer.headers["location"])
    assert "Décision enregistrée" in confirmation.text and reference in confirmation.text

    ofast = await web("ofast.chef")
    queue = await ofast.get("/escalades")
    onward_id, item = queue_item(queue.text, reference)
    assert onward_id != escalation_id and "ANT-MARSEILLE" in item
    assert "Dimension nationale" in item  # the observations became the justification
    assert 'value="forward"' not in item  # nothing above OFAST
    answer = await decide(ofast, onward_id, "accept", "Pris en charge par le pôle opérations.")
    assert answer.status_code == 303

    page = await chef.get(f"/dossiers/{case_id}")  # the origin keeps access
    assert page.status_code == 200
    escalations = section(page.text, "escalate")
    assert escalations.count("Acceptée") == 2
    assert "Pris en charge par le pôle opérations." in escalations
    assert "ofast.chef" in escalations
    assert "<dt>Unité saisie</dt><dd>OFAST</dd>" in page.text
    timeline = section(page.text, "timeline")
    assert timeline.count("Escalade demandée") == 2 and timeline.count("Escalade acceptée") == 2


async def test_the_pass_on_is_audited_as_a_decision_and_an_escalation(web, db):
    chef = await web("cross13.chef")
    case_id = await open_case(chef, unique("Go-fast A7"))
    reference = reference_of((await chef.get(f"/dossiers/{case_id}")).text)
    await chef.post(f"/dossiers/{case_id}/escalade", data={"justification": "Go-fast répétés."})
    marseille = await web("marseille.chef")
    escalation_id, _ = queue_item((await marseille.get("/escalades")).text, reference)
    answer, request_id = await conftest.send(
        marseille.client,
        "POST",
        f"/escalades/{escalation_id}/decision",
        data={"decision": "forward", "note": "À l'OFAST.", "csrf_token": marseille.csrf_token},
    )
    assert answer.status_code == 303
    events = await conftest.events_of(db, request_id)
    decided = next(e for e in events if e["action"] == "escalation.decide")
    assert (decided["object_id"], decided["outcome"]) == (escalation_id, "success")
    onward = next(e for e in events if e["action"] == "case.escalate")
    assert onward["object_id"] == case_id
    assert onward["details"]["forwarded_from"] == escalation_id
    assert decided["details"]["forwarded_as"] == onward["details"]["escalation_id"]


async def test_a_case_is_not_found_outside_its_units(web):
    chef = await web("cross13.chef")
    case_id = await open_case(chef, unique("Point de deal Félix-Pyat"))
    stranger = await web("cross83.police")
    page = await stranger.get(f"/dossiers/{case_id}")
    assert page.status_code == 404 and "Page introuvable" in page.text
    assert "Point de deal Félix-Pyat" not in page.text
    answer = await stranger.post(f"/dossiers/{case_id}/notes", data={"body": "Intrusion"})
    assert answer.status_code == 404
    listed = await stranger.get("/dossiers", params={"q": "Point de deal Félix-Pyat"})
    assert case_id not in listed.text
    assert (await chef.get(f"/dossiers/{uuid.uuid4()}")).status_code == 404
    assert (await chef.get("/dossiers/not-an-id")).status_code == 404


async def test_an_escalation_sent_back_keeps_what_was_typed(web, client, auth):
    chef = await web("cross13.chef")
    case_id = await open_case(chef, unique("Résine Saint-Barthélemy"))
    typed = "Motif détaillé à ne pas perdre & <conserver>"
    answer = await chef.post(
        f"/dossiers/{case_id}/escalade", data={"justification": typed, "priority": "extreme"}
    )
    assert answer.status_code == 422
    form = section(answer.text, "escalate")
    assert "Motif détaillé à ne pas perdre &amp; &lt;conserver&gt;</textarea>" in form
    assert 'id="escalate-priority-error"' in form and "Choisissez une valeur de la liste." in form
    assert 'aria-describedby="escalate-priority-error' in form

    # A unit that is not above the custody unit: the service's refusal, beside the field.
    units = await conftest.unit_ids(client, await auth("cross13.chef"))
    answer = await chef.post(
        f"/dossiers/{case_id}/escalade",
        data={"justification": typed, "to_unit_id": units["CROSS-83"]},
    )
    assert answer.status_code == 422
    form = section(answer.text, "escalate")
    assert "Choisissez une unité au-dessus de l'unité saisie." in unescape(form)
    assert "Motif détaillé à ne pas perdre" in form
    page = await chef.get(f"/dossiers/{case_id}")
    assert "Aucune escalade." in page.text  # nothing was kept of either attempt


async def test_forms_follow_the_policy(web, db):
    """An officer works the case but sees no escalation form; when she forces it, the
    service's refusal is shown on the page. The second escalation of a case is refused."""
    chef = await web("cross13.chef")
    case_id = await open_case(chef, unique("Cannabis indoor Aubagne"))
    officer = await web("cross13.police")
    page = await officer.get(f"/dossiers/{case_id}")
    assert f'action="/dossiers/{case_id}/notes"' in page.text
    assert f'action="/dossiers/{case_id}/escalade"' not in page.text
    assert f'action="/dossiers/{case_id}/cloture"' not in page.text
    answer, request_id = await conftest.send(
        officer.client,
        "POST",
        f"/dossiers/{case_id}/escalade",
        data={"justification": "Je tente ma chance.", "csrf_token": officer.csrf_token},
    )
    assert answer.status_code == 403
    assert "Cette action ne vous est pas permise." in section(answer.text, "escalate")
    assert "Je tente ma chance." not in answer.text  # no form to keep it in
    event = await conftest.the_event(db, request_id)
    assert (event["action"], event["object_id"], event["outcome"], event["status"]) == (
        "case.escalate",
        case_id,
        "denied",
        403,
    )

    await chef.post(f"/dossiers/{case_id}/escalade", data={"justification": "Première fois."})
    answer = await chef.post(f"/dossiers/{case_id}/notes", data={"body": "Suivi."})
    assert answer.status_code == 303  # still worked while escalated
    answer = await chef.post(
        f"/dossiers/{case_id}/cloture", data={"outcome": "merged", "note": "Joint au 0041."}
    )
    assert answer.status_code == 409
    assert "le dossier n'est pas ouvert" in unescape(section(answer.text, "close"))
    answer = await chef.post(f"/dossiers/{case_id}/escalade", data={"justification": "Encore."})
    assert answer.status_code == 409
    assert "n'est pas ouvert" in unescape(section(answer.text, "escalate"))


async def test_working_a_case(web):
    chef = await web("cross13.chef")
    case_id = await open_case(chef, unique("Héroïne Lille-Marseille"))
    steps = [
        ("taches", {"title": "Réquisition opérateur", "assignee": "cross13.police"}),
        ("notes", {"body": "Le véhicule est loué à Lyon."}),
        (
            "saisies/stupefiants",
            {
                "substance": "heroin",
                "quantity": "2,5",
                "quantity_unit": "kg",
                "purity_pct": "41",
                "place": "A7, péage de Lançon",
                "seized_on": "2026-10-02",
            },
        ),
        (
            "saisies/stupefiants",
            {
                "substance": "mdma",
                "quantity": "1200",
                "quantity_unit": "tablets",
                "seized_on": "2026-10-02",
            },
        ),
        (
            "saisies/avoirs",
            {"category": "cash", "estimated_value_eur": "48500", "seized_on": "2026-10-02"},
        ),
        ("interpellations", {"count": "3", "arrested_on": "2026-10-02"}),
        ("equipe", {"username": "cross83.police", "role": "observer", "expires_at": "2026-12-31"}),
    ]
    for path, data in steps:
        answer = await chef.post(f"/dossiers/{case_id}/{path}", data=data)
        assert answer.status_code == 303, (path, answer.text)
    page = (await chef.get(f"/dossiers/{case_id}")).text
    assert "Réquisition opérateur" in page and "confiée à" in section(page, "tasks")
    assert "Le véhicule est loué à Lyon." in page
    drugs = section(page, "drugs")
    assert "Héroïne" in drugs and "2,5 kg" in drugs and "41 %" in drugs
    assert "1\u202f200 comprimés" in drugs
    assert "48\u202f500,00 €" in section(page, "assets")
    assert "3 personnes" in section(page, "arrests")
    team = section(page, "team")
    assert "cross83.police" in team and "Observateur" in team and "31/12/2026 23:59" in team

    task_id = re.search(r'action="/dossiers/[0-9a-f-]+/taches/([0-9a-f-]{36})"', page).group(1)
    answer = await chef.post(f"/dossiers/{case_id}/taches/{task_id}", data={"status": "done"})
    assert answer.status_code == 303
    tasks = section((await chef.get(f"/dossiers/{case_id}")).text, "tasks")
    assert 'class="badge task-done">Terminée' in tasks

    answer = await chef.post(
        f"/dossiers/{case_id}/equipe", data={"username": "nobody.here", "role": "member"}
    )
    assert answer.status_code == 422
    assert "Aucun agent actif ne porte cet identifiant." in section(answer.text, "team")
    assert 'value="nobody.here"' in answer.text

    page = (await chef.get(f"/dossiers/{case_id}")).text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    change = {"title": "Héroïne : filière A7", "priority": "urgent", "version": version}
    answer = await chef.post(f"/dossiers/{case_id}/modifier", data=change)
    assert answer.status_code == 303
    stale = await chef.post(f"/dossiers/{case_id}/modifier", data={**change, "title": "Autre"})
    assert stale.status_code == 412
    assert "modifié entre-temps" in section(stale.text, "update")
    assert 'value="Autre"' in stale.text
    page = (await chef.get(f"/dossiers/{case_id}")).text
    assert "<dt>Titre</dt><dd>Héroïne : filière A7</dd>" in page
    assert "Dossier modifié" in section(page, "timeline")

    answer = await chef.post(
        f"/dossiers/{case_id}/cloture",
        data={"outcome": "judicial_referral", "note": "Saisine de la JIRS de Marseille."},
    )
    assert answer.status_code == 303
    page = (await chef.get(f"/dossiers/{case_id}")).text
    assert "Saisine de l'autorité judiciaire" in unescape(page) and "Clos" in page
    assert f'action="/dossiers/{case_id}/notes"' not in page
    answer = await chef.post(f"/dossiers/{case_id}/reouverture", data={})
    assert answer.status_code == 303
    assert "Dossier rouvert" in (await chef.get(f"/dossiers/{case_id}")).text


async def test_a_withheld_record_shows_as_a_placeholder(web, client, auth):
    """A customs record of scope `agency`, linked by its author, stays withheld from the
    gendarme who leads the case: only its unit shows."""
    chef = await web("cross13.chef")
    case_id = await open_case(chef, unique("Fret aérien Marignane"))
    title = unique("Source douanière sensible")
    customs = await auth("cross13.douane")
    record_id = await file_record(client, customs, title, scope="agency")
    response = await client.post(
        f"/api/v1/cases/{case_id}/records", headers=customs, json={"record_id": record_id}
    )
    assert response.status_code == 204, response.text
    records = section((await chef.get(f"/dossiers/{case_id}")).text, "link")
    assert "Renseignement non communiqué" in records and "Retenu par CROSS-13" in records
    assert title not in records and record_id not in records


async def test_opening_a_case_without_a_title_says_so(web):
    officer = await web("cross13.gendarme")
    answer = await officer.post("/dossiers", data={"title": "", "summary": "Résumé tapé"})
    assert answer.status_code == 422
    assert 'id="create-title-error"' in answer.text and "Ce champ est obligatoire." in answer.text
    assert "Résumé tapé</textarea>" in answer.text


async def test_the_queue_is_for_supervisors(web):
    officer = await web("cross13.police")
    page = await officer.get("/escalades")
    assert page.status_code == 200
    assert "Vous n'êtes chef d'aucune unité" in page.text
    ofast = await web("ofast.chef")
    page = await ofast.get("/escalades")
    assert 'name="sous"' in page.text  # a national supervisor may look below
    marseille = await web("marseille.chef")
    assert 'name="sous"' not in (await marseille.get("/escalades")).text


async def test_an_overdue_escalation_is_flagged(web, db):
    chef = await web("cross13.chef")
    case_id = await open_case(chef, unique("Laboratoire clandestin"))
    reference = reference_of((await chef.get(f"/dossiers/{case_id}")).text)
    await chef.post(f"/dossiers/{case_id}/escalade", data={"justification": "Urgent."})
    async with db.sessionmaker() as session, session.begin():
        await session.execute(
            text(
                "update escalations set due_at = now() - interval '1 hour',"
                " created_at = now() - interval '3 days' where case_id = :c"
            ),
            {"c": case_id},
        )
    marseille = await web("marseille.chef")
    _, item = queue_item((await marseille.get("/escalades")).text, reference)
    assert 'class="overdue"' in item and "En retard" in item and "il y a 3 jours" in item


class _Tree(HTMLParser):
    """The path of unit codes down to each <li data-code> of the tree."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str | None] = []
        self.paths: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "li":
            code = dict(attrs).get("data-code")
            self.stack.append(code)
            if code:
                self.paths[code] = [c for c in self.stack if c]

    def handle_endtag(self, tag):
        if tag == "li":
            self.stack.pop()


async def test_the_unit_tree_shows_cross13_under_its_parents(web):
    officer = await web("cross13.police")
    page = await officer.get("/unites")
    assert page.status_code == 200
    tree = _Tree()
    tree.feed(page.text)
    assert tree.paths["CROSS-13"] == ["OFAST", "ANT-MARSEILLE", "CROSS-13"]
    assert tree.paths["CROSS-59"] == ["OFAST", "ANT-LILLE", "CROSS-59"]
    mine = re.search(r'<li data-code="CROSS-13" class="mine">.*?</li>', page.text, re.S).group(0)
    assert "mon unité" in mine and "enquêteur" in mine
    assert page.text.count("mon unité") == 1
