# syntax=docker/dockerfile:1
# Agent Server: one image for every role, chosen by its command:
#   serve               API and run queue in one process (needs DATABASE_URI, or `serve --embedded`)
#   serve --no-queue    API only (split mode), scaled apart from the workers
#   worker              queue worker only: claims and executes runs
#   migrate             apply the database schema and exit
# The project (langgraph.json and its graphs) lives in /app; the examples stand in until you build your own
# image on top of this one (`agent-server dockerfile Dockerfile`, see deploy/README.md) or mount yours there.
# Stop it with more than DRAIN_TIMEOUT_SECS of grace (docker stop -t 45, Compose stop_grace_period,
# Kubernetes terminationGracePeriodSeconds): a worker lets its runs finish that long, then hands the rest back.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The dependencies first: a change of our source does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p src/agent_server && touch src/agent_server/__init__.py \
    && pip install --no-cache-dir . && pip uninstall -y agent-server
COPY src ./src
RUN pip install --no-cache-dir --no-deps .

FROM python:${PYTHON_VERSION}-slim AS server
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 PORT=8000 \
    DRAIN_TIMEOUT_SECS=30 \
    AGENT_SERVER_DATA_DIR=/var/lib/agent-server
RUN groupadd --system --gid 10001 agent \
    && useradd --system --uid 10001 --gid agent --home-dir /app --no-create-home --shell /usr/sbin/nologin agent \
    && mkdir -p /app /var/lib/agent-server && chown agent:agent /var/lib/agent-server
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY examples/langgraph.json ./
COPY examples/graphs ./graphs
USER 10001:10001
EXPOSE 8000
# /ok answers as long as the process serves; a worker has no HTTP API: its deployments disable or replace this.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '8000')}/ok\", timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["agent-server"]
CMD ["serve"]
