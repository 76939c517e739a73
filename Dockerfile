# syntax=docker/dockerfile:1
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY provisioner ./provisioner
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist

FROM python:3.12-slim
LABEL org.opencontainers.image.title="streamkap-provisioner" \
      org.opencontainers.image.description="Provision Streamkap API client credentials from YAML manifests"
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PROVISIONER_LOG_FORMAT=json
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir /tmp/*.whl && rm /tmp/*.whl \
    && useradd --system --uid 10001 --home-dir /work --create-home provisioner
USER 10001
WORKDIR /work
VOLUME ["/manifests"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["provisioner"]
CMD ["apply", "/manifests"]
