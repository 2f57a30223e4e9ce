# qbproxy production image. Build: docker build -t qbproxy .
# Run: docker run -p 8080:8080 -p 9090:9090 -v qbproxy-data:/data qbproxy
# Without QBPROXY_DATABASE_DSN the cache lives in an embedded Postgres under /data/pg.

# Wheels for qbproxy and every dependency; all of them ship binary wheels, so no compiler.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.cfg README.md ./
COPY qbproxy ./qbproxy
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    QBPROXY_SERVER_HOST=0.0.0.0 \
    QBPROXY_ADMIN_HOST=0.0.0.0 \
    QBPROXY_DATABASE_DATA_DIR=/data/pg
# A bind mount keeps the wheels out of the image's layers.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl
# Postgres refuses to run as root; the embedded one runs as this user, its data on the volume.
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home qbproxy \
    && mkdir -p /data \
    && chown qbproxy:qbproxy /data
WORKDIR /app
COPY proxy.toml ./
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('QBPROXY_ADMIN_PORT', '9090') + '/healthz', timeout=4)"]
# `qbproxy serve` handles SIGTERM: stops accepting, drains, closes the pool, stops Postgres.
ENTRYPOINT ["qbproxy"]
CMD ["serve", "--config", "/app/proxy.toml"]
