"""A cap on request bodies, enforced while they stream in.

Without it a multipart upload is received whole (spooled to a temporary file) before the
endpoint can refuse it. Here a declared Content-Length above the cap is refused at once,
and a chunked body is cut off as soon as it passes the cap; both answers are problem+json.
"""

import json

from starlette.exceptions import HTTPException

# Room for multipart boundaries and form fields around the largest attachment.
MULTIPART_OVERHEAD = 1024 * 1024


class BodyTooLarge(HTTPException):
    """Raised from `receive`: FastAPI re-raises HTTP exceptions met while reading a body,
    so the app's handler renders it as a 413 problem."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request bodies are limited to {limit} bytes.")


class BodyLimitMiddleware:
    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope, send) -> None:
        body = json.dumps(
            {
                "type": "https://crossintel.invalid/problems/payload_too_large",
                "title": "Payload too large",
                "status": 413,
                "detail": f"Request bodies are limited to {self.max_bytes} bytes.",
                "instance": scope["path"],
                "code": "payload_too_large",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)
