"""The app built from CROSSINTEL_* environment variables, for benchmarks that run it in a
process of their own: `uvicorn --factory bench.asgi_app:create_app`.

Logging is configured as `crossintel serve` does it (JSON lines, one access line per
request), so that the process does the work a served one does.
"""

from fastapi import FastAPI

from app.logs import configure_logging
from app.main import create_app as build_app
from app.settings import Settings


def create_app() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level)
    return build_app(settings)
