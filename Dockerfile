# crossintel production image. Not built by CI (no Docker engine there); see README.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, from the hash-pinned lock, so that this layer is cached across code changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

# The project itself, without resolving anything again. Installed in place (-e) because the
# application reads alembic.ini and migrations/ next to its package (app/db.py).
COPY pyproject.toml README.md alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN pip install --no-deps -e . \
 && useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin crossintel \
 && mkdir -p /app/var \
 && chown crossintel:crossintel /app/var

USER crossintel

# CROSSINTEL_DATA_DIR only matters when no CROSSINTEL_DATABASE_URL is given (embedded mode).
ENV CROSSINTEL_HOST=0.0.0.0 \
    CROSSINTEL_PORT=8000 \
    CROSSINTEL_DATA_DIR=/app/var

EXPOSE 8000

# No curl in the slim image: probe /readyz with Python (a 503 raises, so the check fails).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('CROSSINTEL_PORT', '8000'), timeout=4)"]

CMD ["crossintel", "serve", "--migrate"]
