"""The web client in a real Chromium, against a real server: what a user does with the
mouse and keyboard, on the French pages.

The machinery is in tests/browser.py. Every run writes screenshots of the main pages to
tests/screenshots/, and, when a test fails, one of each page it had open, named after the
test (tests/screenshots/failed/). Tests are sync functions: Playwright's sync API runs its
own event loop, so it is started after the session's async fixtures are set up and
stopped at the end of this module.
"""

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests import browser
from tests.conftest import DEMO_PASSWORD

if not os.access(browser.CHROMIUM, os.X_OK):
    pytest.skip(browser.CHROMIUM_MISSING, allow_module_level=True)

API = "/api/v1"
SESSION_COOKIE = "crossintel_session"


# --- fixtures --------------------------------------------------------------------------


class _Reports:
    """Keeps each test's reports on its item, for the fixtures' teardown to see whether the
    test failed (a hook of a plugin registered by this module only)."""

    key = pytest.StashKey[dict]()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        report = yield
        item.stash.setdefault(self.key, {})[report.when] = report
        return report


@pytest.fixture(scope="module", autouse=True)
def _reports(request: pytest.FixtureRequest) -> Iterator[None]:
    # The failures of a previous run are not this run's.
    shutil.rmtree(browser.SCREENSHOTS / "failed", ignore_errors=True)
    plugin = _Reports()
    request.config.pluginmanager.register(plugin, "crossintel-browser-reports")
    yield
    request.config.pluginmanager.unregister(plugin)


@pytest.fixture(scope="module")
def base_url(settings, db) -> Iterator[str]:
    """The server, on the run's database with the demo data (`db` loads it)."""
    with browser.live_server(settings) as url:
        yield url


@pytest.fixture(scope="module")
def chromium(base_url: str) -> Iterator[Browser]:
    """Chromium, started once the server (and so every async fixture) is up."""
    expect.set_options(timeout=browser.EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        instance = browser.launch_chromium(playwright)
        yield instance
        instance.close()


@pytest.fixture
def open_page(chromium: Browser, base_url: str, request: pytest.FixtureRequest):
    """open_page(username) -> a page in a browser profile of its own, signed in as that demo
    persona through the sign-in form; open_page() -> one not signed in. Closed after the
    test, each page screenshotted first when the test failed."""
    opened: list[tuple[str, Page]] = []

    def open_as(username: str | None = None) -> Page:
        context = browser.new_context(chromium, base_url)
        page = context.new_page()
        opened.append((username or "anonyme", page))
        if username:
            browser.sign_in(page, username, DEMO_PASSWORD)
        return page

    yield open_as
    call = request.node.stash.get(_Reports.key, {}).get("call")
    for number, (who, page) in enumerate(opened, 1):
        if call is not None and call.failed and not page.is_closed():
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            # A diagnosis only: a page that cannot be shot must not hide the failure.
            with contextlib.suppress(PlaywrightError):
                browser.screenshot(page, f"failed/{name}-{number}-{who}")
        page.context.close()


@pytest.fixture(scope="module")
def api(base_url: str) -> Iterator[Callable[[str], httpx.Client]]:
    """api(username) -> an httpx client of the server's JSON API, signed in as that persona
    (to prepare or trigger what a test is not about)."""
    clients: dict[str, httpx.Client] = {}

    def client_of(username: str) -> httpx.Client:
        if username not in clients:
            client = httpx.Client(base_url=base_url, timeout=30)
            token = client.post(
                f"{API}/auth/token",
                data={"grant_type": "password", "username": username, "password": DEMO_PASSWORD},
            )
            assert token.status_code == 200, token.text
            client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            clients[username] = client
        return clients[username]

    yield client_of
    for client in clients.values():
        client.close()


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def unique_phone() -> tuple[str, str]:
    """A French mobile number of this run: (as filed, "06 12 34 56 78", as searched,
    "0612345678")."""
    digits = f"{uuid.uuid4().int % 10**6:06d}"
    filed = "06 12 " + " ".join(digits[i : i + 2] for i in range(0, 6, 2))
    return filed, filed.replace(" ", "")


def session_cookie(page: Page) -> dict:
    cookies = [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    assert len(cookies) == 1, page.context.cookies()
    return cookies[0]


def wait_for_live_stream(page: Page, path: str = "/") -> None:
    """Open a page with the live notifications and return once its event stream answered:
    the server subscribes the stream to the user's notifications before it answers."""
    with page.expect_response(lambda r: r.url.endswith("/evenements")) as stream:
        page.goto(path)
    assert stream.value.status == 200


# --- sign-in, sign-out, CSRF ---------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_the_session(open_page):
    """Signing in through the form lands on the dashboard with an HttpOnly, SameSite=Strict
    session cookie; signing out goes back to the sign-in page and ends the session on the
    server: the old cookie no longer opens any page."""
    page = open_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/connexion\?suite=%2F$"))
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()
    browser.screenshot(page, "01-connexion")

    page.get_by_label("Identifiant").fill("cross13.police")
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Tableau de bord", level=1)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator(".who .user")).to_have_text("cross13.police")
    cookie = session_cookie(page)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/"
    browser.screenshot(page, "02-tableau-de-bord")

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/connexion\?raison=deconnexion$"))
    expect(page.get_by_role("status")).to_have_text("Vous êtes déconnecté.")
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/connexion\?suite="))
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()

    # The server ended the session: the old cookie, put back, opens nothing.
    page.context.add_cookies([cookie])
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/connexion\?"))
    expect(page.get_by_role("status")).to_contain_text("Votre session a pris fin")


def test_sign_in_goes_on_to_the_page_asked_for(open_page):
    """A page asked for before signing in is the one shown after it."""
    page = open_page()
    page.goto("/renseignements/nouveau")
    expect(page).to_have_url(re.compile(r"/connexion\?suite=%2Frenseignements%2Fnouveau$"))
    page.get_by_label("Identifiant").fill("cross13.police")
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(re.compile(r"/renseignements/nouveau$"))


def test_wrong_password_is_refused_and_the_name_kept(open_page):
    """A wrong password shows a French error on the form, keeps the name typed, and opens
    no session."""
    page = open_page()
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill("agent.inconnu")
    page.get_by_label("Mot de passe").fill("pas-le-bon-mot-de-passe")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_have_text("Identifiant ou mot de passe incorrect.")
    expect(page.get_by_label("Identifiant")).to_have_value("agent.inconnu")
    expect(page.get_by_label("Mot de passe")).to_have_value("")
    assert not [c for c in page.context.cookies() if c["name"] == SESSION_COOKIE]


def test_sign_out_form_without_its_csrf_token_is_refused(open_page):
    """The sign-out form posted without its CSRF token answers the 403 page and leaves the
    session alive; the same form with its token signs out."""
    page = open_page("cross13.police")
    sign_out = page.locator("form[action='/deconnexion']")
    sign_out.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    with page.expect_response(lambda r: r.url.endswith("/deconnexion")) as answer:
        page.get_by_role("button", name="Se déconnecter").click()
    assert answer.value.status == 403
    expect(page.get_by_role("heading", name="Accès refusé")).to_be_visible()
    expect(page.get_by_text("jeton de sécurité absent ou périmé")).to_be_visible()

    # A script's post with a token not the session's is refused the same way.
    refused = page.request.post("/deconnexion", form={"csrf_token": "pas-le-bon-jeton"})
    assert refused.status == 403

    page.goto("/")
    expect(page.get_by_role("heading", name="Tableau de bord", level=1)).to_be_visible()
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(re.compile(r"/connexion\?raison=deconnexion$"))
    page.goto("/")
    expect(page.get_by_role("heading", name="Connexion")).to_be_visible()


# --- the dashboard, live ------------------------------------------------------------------


def test_dashboard_shows_a_new_notification_without_reload(open_page, api):
    """marseille.chef's open dashboard lists an escalation sent to ANT-MARSEILLE as it
    happens, fed by the event stream, without reloading the page."""
    page = open_page("marseille.chef")
    wait_for_live_stream(page)
    notifications = page.locator("#notifications")
    title = unique("Filière portuaire")
    expect(notifications).not_to_contain_text(title)

    chef = api("cross13.chef")
    case = chef.post(f"{API}/cases", json={"title": title, "priority": "high"})
    assert case.status_code == 201, case.text
    escalated = chef.post(
        f"{API}/cases/{case.json()['id']}/escalations",
        json={"justification": "Dimension régionale", "priority": "high"},
    )
    assert escalated.status_code == 201, escalated.text

    fresh = notifications.locator("li.fresh", has_text=title)
    expect(fresh).to_have_count(1)
    expect(fresh).to_contain_text(f"Escalade du dossier {case.json()['reference']}")
    expect(fresh.get_by_role("link", name="voir le dossier")).to_have_attribute(
        "href", f"/dossiers/{case.json()['id']}"
    )


# --- records: filing, reading, searching --------------------------------------------------

NARRATIVE = "Livraison de cocaïne observée sur le parking du port, deux véhicules, un guetteur."


def fill_record(
    page: Page,
    title: str,
    *,
    phone: str | None = None,
    occurred_at: str | None = "2026-09-01T10:00",
    scope: str | None = None,
) -> None:
    """Fill the « Nouveau renseignement » form (already open) as an officer would: graded
    B2, cocaine, Marseille, with a phone entity when given."""
    page.get_by_label("Titre (obligatoire)").fill(title)
    page.get_by_label("Récit (obligatoire)").fill(NARRATIVE)
    if occurred_at:
        page.get_by_label("Date et heure des faits (obligatoire)").fill(occurred_at)
    page.get_by_label("Commune").fill("Marseille")
    page.get_by_label("Département").fill("13")
    page.get_by_label("Cocaïne").check()
    page.get_by_label("B — Source le plus souvent fiable").check()
    page.get_by_label("2 — Connue personnellement de la source").check()
    if scope:
        page.get_by_label(scope).check()
    if phone is not None:
        page.get_by_label("Type d'entité").select_option(label="Téléphone")
        page.get_by_role("button", name="Ajouter l'entité").click()
        page.get_by_label("Numéro (obligatoire)").fill(phone)


def submit_record(page: Page) -> None:
    page.get_by_role("button", name="Enregistrer le renseignement").click()


def record_id_of(page: Page) -> str:
    """The id of the record whose page is open (from its address)."""
    expect(page).to_have_url(re.compile(r"/renseignements/[0-9a-f-]{36}(\?purpose=[^&]+)?$"))
    return re.search(r"/renseignements/([0-9a-f-]{36})", page.url)[1]


@pytest.fixture(scope="module")
def police_record(chromium: Browser, base_url: str) -> dict[str, str]:
    """A record filed by cross13.police through « Nouveau renseignement »: graded B2, with a
    phone of this run (scope: the whole unit, the form's default)."""
    context = browser.new_context(chromium, base_url)
    page = context.new_page()
    try:
        browser.sign_in(page, "cross13.police", DEMO_PASSWORD)
        page.get_by_role("link", name="Nouveau renseignement").click()
        expect(page.get_by_role("heading", name="Nouveau renseignement", level=1)).to_be_visible()
        title = unique("Go-fast A7 Marseille")
        phone, dialled = unique_phone()
        fill_record(page, title, phone=phone)
        browser.screenshot(page, "03-nouveau-renseignement")
        submit_record(page)
        expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
        return {"id": record_id_of(page), "title": title, "phone": phone, "dialled": dialled}
    except Exception:
        browser.screenshot(page, "failed/police_record")
        raise
    finally:
        context.close()


def test_an_officer_files_a_graded_record_and_finds_it_by_phone(open_page, police_record):
    """cross13.police's record filed through the form shows its grading, scope and phone on
    its page; « Recherche » by the phone typed in national format (with a purpose of
    access, asked for when missing) finds it, and its result opens it."""
    page = open_page("cross13.police")
    page.goto(f"/renseignements/{police_record['id']}")
    expect(page.get_by_role("heading", name=police_record["title"], level=1)).to_be_visible()
    facts = page.locator("dl.facts")
    expect(facts.locator(".grading")).to_have_text("B2")
    expect(facts).to_contain_text("Toute l'unité d'origine (police, gendarmerie et douane)")
    expect(facts).to_contain_text("Cocaïne")
    expect(page.locator(".narrative")).to_have_text(NARRATIVE)
    entities = page.get_by_role("region", name="Entités")
    expect(entities).to_contain_text("Téléphone")
    expect(entities).to_contain_text(police_record["phone"])
    browser.screenshot(page, "04-fiche-renseignement")

    page.get_by_role("link", name="Recherche", exact=True).click()
    expect(page.get_by_role("heading", name="Recherche", level=1)).to_be_visible()
    page.get_by_label("Identifiant (téléphone, IBAN, plaque…)").fill(police_record["dialled"])
    page.get_by_role("button", name="Rechercher").click()
    purpose = page.get_by_label("Motif de consultation")
    expect(purpose).to_have_accessible_description(re.compile("Indiquez un motif de consultation"))
    expect(page.get_by_role("alert")).to_contain_text("La recherche n'a pas été faite")

    expect(page.get_by_label("Identifiant (téléphone, IBAN, plaque…)")).to_have_value(
        police_record["dialled"]
    )
    purpose.fill("Vérification du go-fast signalé par la BAC")
    page.get_by_role("button", name="Rechercher").click()
    results = page.get_by_role("region", name="Résultats")
    expect(results).to_contain_text("1 renseignement trouvé.")
    browser.screenshot(page, "05-recherche")
    results.get_by_role("link", name=police_record["title"]).click()
    expect(page.get_by_role("heading", name=police_record["title"], level=1)).to_be_visible()
    assert record_id_of(page) == police_record["id"]


def test_an_agency_only_record_is_hidden_from_the_other_agencies(open_page):
    """A record cross13.douane files for « Mon administration seulement » is not found by
    cross13.police (same unit, another agency) by its title, and its address answers the
    « Page introuvable » page with a 404."""
    douane = open_page("cross13.douane")
    douane.get_by_role("link", name="Nouveau renseignement").click()
    title = unique("Conteneur suspect quai Nord")
    fill_record(douane, title, scope="Mon administration seulement, dans mon unité")
    submit_record(douane)
    expect(douane.get_by_role("heading", name=title, level=1)).to_be_visible()
    record_id = record_id_of(douane)
    expect(douane.locator("dl.facts")).to_contain_text("Administration de l'auteur seulement")

    police = open_page("cross13.police")
    police.get_by_role("link", name="Recherche", exact=True).click()
    police.get_by_label("Texte libre").fill(title)
    police.get_by_role("button", name="Rechercher").click()
    results = police.get_by_role("region", name="Résultats")
    expect(results).to_contain_text("0 renseignements trouvés.")
    expect(results).to_contain_text("Aucun renseignement ne correspond.")
    expect(results.get_by_role("link", name=title)).to_have_count(0)

    answer = police.goto(f"/renseignements/{record_id}")
    assert answer is not None and answer.status == 404
    expect(police.get_by_role("heading", name="Page introuvable")).to_be_visible()
    expect(police.get_by_text(title)).to_have_count(0)

    # The same search by its author finds it: the search above did ask the right thing.
    douane.get_by_role("link", name="Recherche", exact=True).click()
    douane.get_by_label("Texte libre").fill(title)
    douane.get_by_role("button", name="Rechercher").click()
    expect(douane.get_by_role("region", name="Résultats")).to_contain_text(
        "1 renseignement trouvé."
    )


def test_a_form_error_keeps_what_was_typed(open_page):
    """« Nouveau renseignement » sent without the date of the facts and with an invalid phone
    comes back (422) with the title, narrative and number still typed, and a French error
    tied to each field at fault; nothing is filed."""
    page = open_page("cross13.police")
    page.get_by_role("link", name="Nouveau renseignement").click()
    title = unique("Point de deal cité Félix-Pyat")
    fill_record(page, title, phone="01 23", occurred_at=None)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        submit_record(page)
    assert answer.value.status == 422
    expect(page.get_by_role("alert")).to_contain_text("Le renseignement n'est pas enregistré")
    expect(page.get_by_label("Titre (obligatoire)")).to_have_value(title)
    expect(page.get_by_label("Récit (obligatoire)")).to_have_value(NARRATIVE)
    expect(page.get_by_label("Commune")).to_have_value("Marseille")
    expect(page.get_by_label("B — Source le plus souvent fiable")).to_be_checked()
    occurred = page.get_by_label("Date et heure des faits (obligatoire)")
    expect(occurred).to_have_attribute("aria-invalid", "true")
    expect(occurred).to_have_accessible_description(re.compile("Ce champ est obligatoire."))
    number = page.get_by_label("Numéro (obligatoire)")
    expect(number).to_have_value("01 23")
    expect(number).to_have_accessible_description(
        re.compile("Numéro de téléphone invalide pour le pays indiqué.")
    )
    expect(page.get_by_label("Titre (obligatoire)")).not_to_have_attribute("aria-invalid", "true")
    browser.screenshot(page, "03b-nouveau-renseignement-erreurs")

    # Corrected, it is filed.
    occurred.fill("2026-09-01T10:00")
    number.fill(unique_phone()[0])
    submit_record(page)
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()


def test_a_form_without_its_csrf_token_is_refused(open_page):
    """« Nouveau renseignement » posted without its CSRF token (the hidden input removed, and
    by a script) answers the 403 page and files nothing; the same form with its token
    files the record."""
    page = open_page("cross13.police")
    page.get_by_role("link", name="Nouveau renseignement").click()
    title = unique("Nourrice rue de Lyon")
    fill_record(page, title)
    form = page.locator("form[data-record-form]")
    token = form.locator("input[name=csrf_token]").input_value()
    form.locator("input[name=csrf_token]").evaluate("input => input.remove()")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        submit_record(page)
    assert answer.value.status == 403
    expect(page.get_by_role("heading", name="Accès refusé")).to_be_visible()
    expect(page.get_by_text("jeton de sécurité absent ou périmé")).to_be_visible()

    fields = {
        "title": title,
        "narrative": NARRATIVE,
        "occurred_at": "2026-09-01T10:00",
        "source_reliability": "B",
        "information_assessment": "2",
    }
    scripted = page.request.post("/renseignements/nouveau", multipart=fields, max_redirects=0)
    assert scripted.status == 403

    page.get_by_role("link", name="Recherche", exact=True).click()
    page.get_by_label("Texte libre").fill(title)
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("region", name="Résultats")).to_contain_text(
        "0 renseignements trouvés."
    )

    # With the session's token, the same post files it.
    filed = page.request.post(
        "/renseignements/nouveau", multipart={**fields, "csrf_token": token}, max_redirects=0
    )
    assert filed.status == 303, filed.text()
    page.goto(filed.headers["location"])
    expect(page.get_by_role("heading", name=title, level=1)).to_be_visible()
    page.get_by_role("link", name="Nouveau renseignement").click()
    fill_record(page, unique("Nourrice rue de Rome"))
    submit_record(page)
    expect(page).to_have_url(re.compile(r"/renseignements/[0-9a-f-]{36}$"))


# --- cases and escalation -------------------------------------------------------------------


def escalation_item(page: Page, reference: str):
    """The item of the case `reference` in the open « File d'escalade », following its
    « Page suivante » links (other tests leave escalations of their own in the queue)."""
    expect(page.get_by_role("heading", name="File d'escalade", level=1)).to_be_visible()
    while True:
        item = page.locator("li[id^=escalade-]").filter(
            has=page.get_by_role("heading", name=re.compile(re.escape(reference)))
        )
        if item.count():
            return item
        more = page.get_by_role("link", name="Page suivante")
        assert more.count(), f"{reference} is not in the queue"
        with page.expect_navigation():
            more.click()


def decide(page: Page, reference: str, decision: str, note: str, confirmed: str) -> None:
    """Decide the escalation of the case `reference` from « File d'escalade » (the radio
    labelled `decision`); the queue comes back confirming it (`confirmed`)."""
    page.get_by_role("link", name="File d'escalade").click()
    item = escalation_item(page, reference)
    item.get_by_label(decision, exact=True).check()
    item.get_by_label("Observations").fill(note)
    item.get_by_role("button", name="Enregistrer la décision").click()
    expect(page.get_by_role("status")).to_have_text(
        f"Décision enregistrée : {confirmed} — dossier {reference}."
    )


def test_a_case_escalated_to_ofast_through_the_queues(open_page, police_record):
    """cross13.chef opens a case, links cross13.police's record from the record's page and
    escalates the case; marseille.chef passes it on to OFAST from « File d'escalade »;
    ofast.chef accepts it there. The dashboards left open meanwhile show each decision
    as it is taken, without reload: the origin's (cross13.chef) both the antenne's and
    OFAST's, marseille.chef's OFAST's (a decision is told to the supervisors of every unit
    the case came up through)."""
    chef = open_page("cross13.chef")
    chef.get_by_role("link", name="Dossiers", exact=True).click()
    expect(chef.get_by_role("heading", name="Dossiers", level=1)).to_be_visible()
    opening = chef.get_by_role("region", name="Ouvrir un dossier")
    title = unique("Filière go-fast A7")
    opening.get_by_label("Titre", exact=True).fill(title)
    opening.get_by_label("Priorité").select_option(label="Haute")
    opening.get_by_role("button", name="Ouvrir le dossier").click()
    heading = chef.get_by_role("heading", name=re.compile(rf"^Dossier CROSS13-\S+ — {title}$"))
    expect(heading).to_be_visible()
    reference = re.match(r"Dossier (\S+)", heading.inner_text())[1]
    case_url = chef.url

    chef.goto(f"/renseignements/{police_record['id']}")
    linking = chef.get_by_role("form", name="Rattacher à un dossier")
    linking.get_by_label("Dossier ouvert").select_option(label=f"{reference} — {title}")
    linking.get_by_role("button", name="Rattacher").click()
    expect(chef).to_have_url(case_url)
    linked = chef.get_by_role("region", name="Renseignements rattachés")
    expect(linked.get_by_role("link", name=police_record["title"])).to_be_visible()

    escalations = chef.get_by_role("region", name="Escalades")
    escalations.get_by_label("Motif de l'escalade").fill("Dimension régionale : filière A7")
    escalations.get_by_label("Priorité").select_option(label="Urgente")
    escalations.get_by_role("button", name="Escalader").click()
    escalations = chef.get_by_role("region", name="Escalades")
    expect(escalations.get_by_text("CROSS-13 → ANT-MARSEILLE")).to_be_visible()
    expect(escalations).to_contain_text("En attente")
    expect(chef.get_by_text("Escaladé", exact=True).first).to_be_visible()
    browser.screenshot(chef, "06-dossier")

    # cross13.chef's dashboard, in a second browser, stays open from now on.
    chef_dashboard = open_page("cross13.chef")
    wait_for_live_stream(chef_dashboard)
    chef_news = chef_dashboard.locator("#notifications li.fresh")

    marseille = open_page("marseille.chef")
    marseille.get_by_role("link", name="File d'escalade").click()
    item = escalation_item(marseille, reference)
    expect(item).to_contain_text("CROSS-13, vers ANT-MARSEILLE")
    expect(item).to_contain_text("Dimension régionale : filière A7")
    item.scroll_into_view_if_needed()
    browser.screenshot(marseille, "07-file-escalade")
    decide(
        marseille,
        reference,
        "Transmettre à l'échelon supérieur (OFAST)",
        "Saisine OFAST",
        "transmettre à l'échelon supérieur",
    )
    expect(
        chef_news.filter(has_text=f"Escalade du dossier {reference} acceptée par ANT-MARSEILLE")
    ).to_have_count(1)

    wait_for_live_stream(marseille)
    ofast = open_page("ofast.chef")
    decide(ofast, reference, "Accepter", "Prise en charge par l'OFAST", "accepter")
    marseille_news = marseille.locator("#notifications li.fresh")
    told = marseille_news.filter(has_text=f"Escalade du dossier {reference} acceptée par OFAST")
    expect(told).to_have_count(1)
    expect(told).to_contain_text("Prise en charge par l'OFAST")
    # The origin's dashboard shows OFAST's decision too, beside the antenne's live item
    # (still there: the page was not reloaded).
    origin_told = chef_news.filter(has_text=f"Escalade du dossier {reference} acceptée par OFAST")
    expect(origin_told).to_have_count(1)
    expect(origin_told).to_contain_text("Prise en charge par l'OFAST")
    expect(chef_news).to_have_count(2)

    chef.goto(case_url)
    escalations = chef.get_by_role("region", name="Escalades")
    for hop in ("CROSS-13 → ANT-MARSEILLE", "ANT-MARSEILLE → OFAST"):
        expect(escalations.locator("li", has_text=hop)).to_contain_text("Acceptée")


# --- units ---------------------------------------------------------------------------------


def test_units_page_shows_the_tree_with_my_unit(open_page):
    """« Unités » shows the units as a tree, OFAST at its root and CROSS-13 under the
    antenne of Marseille, marked as cross13.police's own unit with its role."""
    page = open_page("cross13.police")
    page.get_by_role("link", name="Unités").click()
    expect(page.get_by_role("heading", name="Unités", level=1)).to_be_visible()
    tree = page.locator("ul.tree")
    root = tree.locator(":scope > li[data-code=OFAST]")
    expect(root).to_have_count(1)
    mine = root.locator("li[data-code=ANT-MARSEILLE] li[data-code=CROSS-13]")
    expect(mine).to_have_count(1)
    expect(mine.locator(":scope > .unit")).to_contain_text("mon unité")
    expect(mine.locator(":scope > .unit")).to_contain_text("enquêteur")
    expect(tree.locator("li.mine")).to_have_count(1)
    browser.screenshot(page, "08-unites")
