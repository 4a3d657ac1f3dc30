"""Pages of the web client: cases."""

from fastapi import APIRouter

router = APIRouter()
