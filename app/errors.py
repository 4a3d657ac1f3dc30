"""Errors as application/problem+json (RFC 9457), each with a stable `code`."""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("crossintel.errors")

PROBLEM_TYPE_BASE = "https://crossintel.invalid/problems/"


class Problem(Exception):
    """A failure the client should hear about, rendered as problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = errors
        self.headers = headers


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not_found", "Not found", f"No such {what}.")


def forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", "Forbidden", detail)


def conflict(code: str, detail: str) -> Problem:
    return Problem(409, code, "Conflict", detail)


def unauthorized(
    detail: str = "A valid bearer token is required.", *, error: str | None = "invalid_token"
) -> Problem:
    """401 with a Bearer challenge; RFC 6750 §3.1: no error code when no token was sent."""
    challenge = 'Bearer realm="crossintel"' + (f', error="{error}"' if error else "")
    return Problem(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": challenge}
    )


def invalid_field(loc: list[str | int], msg: str, status: int = 422) -> Problem:
    """A 422 naming the field at fault, in the same shape as request validation errors."""
    return Problem(
        status,
        "validation_error",
        "Invalid request",
        f"{'.'.join(str(p) for p in loc)}: {msg}",
        errors=[{"loc": loc, "msg": msg}],
    )


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail or problem.title,
        "instance": request.url.path,
        "code": problem.code,
    }
    if problem.errors is not None:
        body["errors"] = problem.errors
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(
        body,
        status_code=problem.status,
        headers=problem.headers,
        media_type="application/problem+json",
    )


_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def install_error_handlers(
    app: FastAPI,
    on_problem: Callable[[Request, int], Awaitable[None]] | None = None,
    page: Callable[[Request, Problem], Response | None] | None = None,
) -> None:
    """problem+json for every failure; `on_problem` hears of each Problem raised (the
    audit trail records denials). `page` may answer a failure instead, as an HTML page
    (the web client's paths); it returns None for the API's."""

    def respond(request: Request, problem: Problem) -> Response:
        answer = page(request, problem) if page is not None else None
        return answer if answer is not None else problem_response(request, problem)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if on_problem is not None:
            try:
                await on_problem(request, exc.status)
            except Exception:
                log.exception("could not record a refused request in the audit trail")
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "loc": list(err.get("loc", ())),
                "msg": err.get("msg", "invalid"),
                "type": err.get("type"),
            }
            for err in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        detail = f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
        return respond(
            request, Problem(422, "validation_error", "Invalid request", detail, errors=errors)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        headers = dict(exc.headers or {})
        if exc.status_code == 401:
            headers.setdefault("WWW-Authenticate", 'Bearer realm="crossintel"')
        detail = exc.detail if isinstance(exc.detail, str) else title
        return respond(
            request, Problem(exc.status_code, code, title, detail, headers=headers or None)
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Starlette runs this outside every middleware, once the request context is gone:
        # carry the request id into the log line and the response header by hand.
        request_id = getattr(request.state, "request_id", None)
        log.error(
            "unhandled error",
            exc_info=(type(exc), exc, exc.__traceback__),
            extra={"request_id": request_id} if request_id else None,
        )
        return respond(
            request,
            Problem(
                500,
                "internal_error",
                "Internal server error",
                "An unexpected error occurred.",
                headers={"X-Request-ID": request_id} if request_id else None,
            ),
        )
