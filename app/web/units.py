"""Pages of the web client: units."""

from fastapi import APIRouter

router = APIRouter()
