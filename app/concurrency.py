"""Optimistic concurrency: an ETag per version, and If-Match required to change."""

from app.errors import Problem


def etag(version: int) -> str:
    return f'"{version}"'


def check_if_match(version: int, if_match: str | None, what: str) -> None:
    """428 without If-Match, 412 when it names no current version (strong comparison)."""
    if if_match is None:
        raise Problem(
            428,
            "precondition_required",
            "Precondition required",
            f"Send If-Match with the {what}'s current ETag to change it.",
        )
    tags = {tag.strip() for tag in if_match.split(",")}
    if "*" not in tags and etag(version) not in tags:
        raise Problem(
            412,
            "precondition_failed",
            "Precondition failed",
            f"The {what} changed since you read it; fetch it again and retry.",
        )
