"""The app built from CROSSINTEL_* environment variables, for tests that run the service
in processes of their own: `uvicorn --factory tests.asgi_app:create_app`."""

from fastapi import FastAPI

from app.main import create_app as build_app
from app.settings import Settings


def create_app() -> FastAPI:
    return build_app(Settings())
