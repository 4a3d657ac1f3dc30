"""Pages of the web client: records."""

from fastapi import APIRouter

router = APIRouter()
