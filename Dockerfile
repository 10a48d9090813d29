# One image for every Shouhu service; the command picks the service:
#   python -m services.registry | services.visits | services.notifications | services.reporting
#   shouhu db upgrade <service>
# Secrets come only from the environment at run time (see .env.example).

# Builder and final stage share the base image, so the venv's interpreter path
# (/usr/local/bin/python3.11) is the same in both and the copied venv works.
FROM python:3.11-slim AS builder

# The uv the Makefile pins, from PyPI like the Makefile installs it.
RUN pip install --no-cache-dir --disable-pip-version-check uv==0.13.8

ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src

# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --no-editable

# The project itself, installed non-editable: the venv then holds the code
# (migrations and templates included), and nothing points back at /src.
# README.md is read by the build backend (pyproject's readme).
COPY README.md ./
COPY shared ./shared
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable


FROM python:3.11-slim

# Fixed numeric ids, so orchestrators can check runAsNonRoot and volumes can be chowned.
RUN groupadd --system --gid 10001 shouhu \
 && useradd --system --uid 10001 --gid shouhu --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin shouhu

# Where the redis-acl job writes Redis's ACL file: a named volume mounted here starts with this owner.
RUN mkdir -p /run/shouhu-acl && chown 10001:10001 /run/shouhu-acl

# Owned by root and not writable by the service user: the code cannot be changed at run time.
COPY --from=builder /app/.venv /app/.venv

# SHOUHU_HTTP_HOST: in a container the API must listen beyond loopback to be reachable.
# SHOUHU_ENV=prod fails closed: without SHOUHU_JWT_SECRET a service refuses to start
# instead of silently using the development key (set SHOUHU_ENV=dev for a local demo).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SHOUHU_HTTP_HOST=0.0.0.0 \
    SHOUHU_LOG_FORMAT=json \
    SHOUHU_ENV=prod

WORKDIR /app
USER 10001:10001
EXPOSE 8001 8002 8003 8004

CMD ["shouhu", "--help"]
