"""The machinery of the browser tests (tests/test_web_browser.py): a real server, a real
Chromium, personas signed in through the sign-in form, and screenshots.

The server is `python -m app.cli serve` in a subprocess, on a free port of 127.0.0.1,
against the test run's database (migrated and loaded with the demo data by the session
fixtures of tests/conftest.py). The browser is Debian's Chromium at /usr/bin/chromium,
driven by the `playwright` Python package of the dev lock (`playwright install` is never
needed nor called).
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from app.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = "Chromium not installed: apt-get install -y chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "tests" / "screenshots"
# Safety nets against a hung server or page, not measurements: a loaded 2-core machine
# may take seconds to answer; Playwright's expect() retries until then.
SERVER_START_LIMIT = 120.0
SERVER_STOP_LIMIT = 30.0
PAGE_TIMEOUT_MS = 20_000
EXPECT_TIMEOUT_MS = 10_000


def free_port() -> int:
    """A port of 127.0.0.1 free right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_environment(settings: Settings, port: int) -> dict[str, str]:
    """The server's environment: this run's settings, and no other CROSSINTEL_ variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSINTEL_")}
    env.update(
        {
            "CROSSINTEL_ENV": "test",
            "CROSSINTEL_DATABASE_URL": str(settings.database_url),
            "CROSSINTEL_DATA_DIR": str(settings.data_dir),
            "CROSSINTEL_HOST": "127.0.0.1",
            "CROSSINTEL_PORT": str(port),
            "CROSSINTEL_SIGNING_KEY": settings.signing_key.get_secret_value(),
            "CROSSINTEL_AUDIT_KEY": settings.audit_key.get_secret_value(),
            "CROSSINTEL_DEMO_PASSWORD": settings.demo_password.get_secret_value(),
            "CROSSINTEL_DEMO_CLIENT_SECRET": settings.demo_client_secret.get_secret_value(),
            "CROSSINTEL_LOG_LEVEL": "WARNING",
        }
    )
    return env


@contextlib.contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """`crossintel serve` on a free port of 127.0.0.1, ready (GET /readyz answers 200):
    its base URL. Stopped (SIGINT, as Ctrl-C) on exit; its log is shown when it fails."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=server_environment(settings, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def output() -> str:
            log.seek(0)
            return log.read()[-5000:]

        try:
            _wait_until_ready(process, base_url, output)
            yield base_url
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(SERVER_STOP_LIMIT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"the server did not stop on SIGINT:\n{output()}")


def _wait_until_ready(process: subprocess.Popen, base_url: str, output) -> None:
    deadline = time.monotonic() + SERVER_START_LIMIT
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}):\n{output()}")
            with contextlib.suppress(httpx.TransportError):
                if client.get("/readyz").status_code == 200:
                    return
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"the server was not ready in {SERVER_START_LIMIT:.0f}s:\n{output()}")
            time.sleep(0.2)  # polling interval of the readiness probe


def launch_chromium(playwright) -> Browser:
    """Debian's Chromium, headless."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )


def new_context(browser: Browser, base_url: str) -> BrowserContext:
    """A browser profile of its own (cookies, storage): one per persona."""
    context = browser.new_context(
        base_url=base_url,
        locale="fr-FR",
        timezone_id="Europe/Paris",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    context.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    return context


def sign_in(page: Page, username: str, password: str) -> None:
    """Through the sign-in form, as a user would; lands on the dashboard."""
    page.goto("/connexion")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="Tableau de bord", level=1)).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot in tests/screenshots/<name>.png (overwritten on every run)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    return path
