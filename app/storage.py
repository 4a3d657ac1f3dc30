"""Attachment files, stored content-addressed (by SHA-256) under CROSSINTEL_DATA_DIR.

An upload is streamed to a temporary file in the same folder while it is hashed, counted
and sniffed, then renamed into place; a refused upload leaves nothing on disk.
"""

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio
import puremagic

CHUNK = 1024 * 1024

# Types allowed, decided from the content, never from the name or the client's header.
ALLOWED_TYPES = {
    "application/pdf",
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/tiff",
    "audio/mpeg",
    "audio/wav",
    "audio/x-wav",
    "video/mp4",
    "text/plain",
}


class TooLarge(Exception):
    pass


class Refused(Exception):
    pass


class Readable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str


def sniff(head: bytes) -> str | None:
    """The MIME type of content from its first bytes, or None when not allowed."""
    try:
        guesses = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        guesses = []
    for guess in guesses:
        mime = (guess.mime_type or "").lower()
        if mime in ALLOWED_TYPES:
            return mime
    if not guesses and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character may be cut at the end of the sample.
            if exc.start < len(head) - 4:
                return None
        return "text/plain"
    return None


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "attachments"

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    async def save(self, source: Readable, max_bytes: int) -> StoredFile:
        """Stream `source` into the store; TooLarge / Refused leave nothing behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        head = b""
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        tmp = anyio.Path(tmp_name)
        try:
            async with anyio.wrap_file(os.fdopen(fd, "wb")) as out:
                while chunk := await source.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge
                    if len(head) < 8192:
                        head += chunk[: 8192 - len(head)]
                    digest.update(chunk)
                    await out.write(chunk)
            content_type = sniff(head) if size else None
            if content_type is None:
                raise Refused
            sha = digest.hexdigest()
            final = self.path(sha)
            final.parent.mkdir(parents=True, exist_ok=True)
            await tmp.replace(final)
            return StoredFile(sha, size, content_type)
        finally:
            await tmp.unlink(missing_ok=True)

    def files(self) -> list[Path]:
        """Every stored file (not uploads in progress)."""
        if not self.root.exists():
            return []
        return [p for p in self.root.glob("??/*") if p.is_file()]

    async def stream(self, sha256: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self.path(sha256), "rb") as f:
            while chunk := await f.read(CHUNK):
                yield chunk
