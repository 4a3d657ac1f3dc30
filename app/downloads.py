"""Stored attachments served as downloads, the same way to the API and the web client."""

from urllib.parse import quote

from fastapi.responses import StreamingResponse

from app.models import RecordAttachment
from app.storage import FileStore


def attachment_response(store: FileStore, attachment: RecordAttachment) -> StreamingResponse:
    """The attachment's file, always as a download (never rendered inline): its name in
    Content-Disposition both as ASCII (quotes dropped) and as UTF-8 (RFC 6266), the type
    sniffed when it was stored with `nosniff`, and nothing cached."""
    ascii_name = attachment.filename.encode("ascii", "ignore").decode().replace('"', "") or "file"
    disposition = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(attachment.filename)}"
    )
    return StreamingResponse(
        store.stream(attachment.sha256),
        media_type=attachment.content_type,
        headers={
            "Content-Disposition": disposition,
            "Content-Length": str(attachment.size),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )
