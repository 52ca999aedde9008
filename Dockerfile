# syntax=docker/dockerfile:1
# The ledger service image. Build: `docker build -t ledger-es .`
# Run it with docker-compose.yml (MongoDB replica set + this service).

# --- build: install the service and its runtime dependencies into a venv ------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Metadata first, then the code: a code change does not re-resolve dependencies.
COPY pyproject.toml README.md ./
COPY server.py ./
COPY domain/ domain/
COPY store/ store/
COPY application/ application/
COPY projections/ projections/
COPY schema/ schema/
COPY runtime/ runtime/
# A regular (non-editable) install without extras: no test or dev tools.
RUN pip install --no-cache-dir . \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +
# GraphiQL's browser files, fetched from the npm registry at the versions and hashes of
# graphiql-assets/package-lock.json, so the page works without internet access.
COPY graphiql-assets/ graphiql-assets/
RUN python graphiql-assets/fetch.py /opt/venv/share/graphiql

# --- runtime: only the venv, a non-root user, no build tools ----------------------
FROM python:3.11-slim AS runtime
LABEL org.opencontainers.image.title="ledger-es" \
      org.opencontainers.image.description="Event-sourced GraphQL bank ledger on MongoDB"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    LOG_FORMAT=json \
    DATA_DIR=/app/data \
    GRAPHIQL_ASSETS_DIR=/opt/venv/share/graphiql \
    SHUTDOWN_TIMEOUT_SECONDS=20 \
    FORWARDED_ALLOW_IPS=*
RUN groupadd --system --gid 10001 ledger \
    && useradd --system --uid 10001 --gid ledger --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin ledger \
    && mkdir -p /app/data \
    && chown -R ledger:ledger /app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# uvicorn is started by server.py with proxy headers on (FORWARDED_ALLOW_IPS) and a
# graceful shutdown of SHUTDOWN_TIMEOUT_SECONDS after SIGTERM.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["python", "-m", "server"]
