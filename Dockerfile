# syntax=docker/dockerfile:1
# One image for every process of Clarity Check; compose.yaml runs it as the web process,
# the fast and slow workers and the one-shot migration. Credentials are never in the
# image: they come from the environment (env file) and a mounted key file at run time.
#
#   docker build -t clarity-check .
#   docker run --rm clarity-check --help

# --- build: the locked dependencies and the project, in /app/.venv --------------------
FROM python:3.12.12-slim-bookworm AS build

# The same uv as scripts/bootstrap; Python is the base image's, never downloaded.
RUN pip install --no-cache-dir "uv==0.13.8"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app
# Dependencies first, from uv.lock alone: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project --python /usr/local/bin/python3.12
# Then the project itself (.dockerignore keeps tests, env files and keys out).
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --python /usr/local/bin/python3.12

# --- runtime ----------------------------------------------------------------------------
FROM python:3.12.12-slim-bookworm AS runtime

# bubblewrap and prlimit (util-linux): the local sandbox backend; git: the scanner's
# file listing and the fix gates.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap ca-certificates git util-linux \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 clarity \
    && useradd --system --uid 10001 --gid clarity --home-dir /home/clarity --create-home \
        --shell /usr/sbin/nologin clarity

WORKDIR /app
# Owned by root: the service can read its code but not change it.
COPY --from=build /app /app
ENV PATH="/app/.venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

USER 10001:10001
EXPOSE 8000

# The web process answers /healthz; compose.yaml gives the workers a check of their own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["clarity"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
