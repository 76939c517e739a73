# syntax=docker/dockerfile:1
# Build: docker build -t streamkap-provisioner:0.1.0 \
#          --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
# Run:   docker run --rm --init -e STREAMKAP_CLIENT_ID -e STREAMKAP_SECRET \
#          -v "$PWD/manifests:/manifests:ro" streamkap-provisioner:0.1.0 plan /manifests
# Nothing secret is built in: credentials come at run time, from the environment or /run/secrets.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# --- build: the wheel, then a virtualenv holding it and its dependencies -----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY provisioner ./provisioner
# The same two steps tests/test_packaging.py runs: build the wheel, install it into a fresh venv.
RUN pip wheel . --no-deps --wheel-dir /dist \
    && python -m venv /opt/provisioner \
    && /opt/provisioner/bin/pip install /dist/*.whl \
    && /opt/provisioner/bin/pip uninstall --yes pip

# --- runtime: the venv on a slim base, as an unprivileged user ----------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="streamkap-provisioner" \
      org.opencontainers.image.description="Provision Streamkap API client credentials from YAML manifests" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PATH=/opt/provisioner/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PROVISIONER_LOG_FORMAT=json
# Same base image as the build stage, so the venv's interpreter links stay valid.
COPY --from=build /opt/provisioner /opt/provisioner
RUN groupadd --system --gid 10001 provisioner \
    && useradd --system --uid 10001 --gid 10001 --home-dir /work --create-home \
       --shell /usr/sbin/nologin provisioner
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Relative sink paths resolve here; mount a volume (or an emptyDir) to keep what is written.
WORKDIR /work
# `run` finishes its cycle in flight on SIGTERM; allow it the time (docker stop -t, K8s grace).
STOPSIGNAL SIGTERM
ENTRYPOINT ["provisioner"]
CMD ["apply", "/manifests"]
