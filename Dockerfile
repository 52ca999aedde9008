# syntax=docker/dockerfile:1
# The ledger service image. Build: `docker build -t ledger-es .`
# Run it with docker-compose.yml (MongoDB replica set + this service).

# --- build: the locked runtime dependencies, then the service, into a venv --------
# Python: the newest version the project supports and tests (pyproject.toml classifiers).
FROM python:3.13-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
# uv at the version the Makefile pins, from PyPI.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# The dependencies in a layer of their own, from uv.lock: a code change does not reinstall
# them. No extras: no test, dev or bench tools.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-install-project --no-editable --python /usr/local/bin/python
# GraphiQL's browser files, fetched from the npm registry at the versions and hashes of
# graphiql-assets/package-lock.json, so the page works without internet access.
COPY graphiql-assets/ graphiql-assets/
RUN python graphiql-assets/fetch.py /opt/venv/share/graphiql
# Then the code.
COPY README.md server.py ./
COPY domain/ domain/
COPY store/ store/
COPY application/ application/
COPY projections/ projections/
COPY schema/ schema/
COPY runtime/ runtime/
# The service itself: a regular (non-editable) install into the same venv.
RUN uv sync --locked --no-editable --python /usr/local/bin/python \
    && find /opt/venv -name '__pycache__' -prune -exec rm -rf {} +

# --- runtime: only the venv, a non-root user, no build tools ----------------------
FROM python:3.13-slim AS runtime
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
