"""Pages of the web client: escalations."""

from fastapi import APIRouter

router = APIRouter()
