# The naive single-stage build of the same app, kept only as the benchmark's point of
# comparison for app/Dockerfile (scripts/bench.py): one stage on the full build base,
# pip and the build backend left in, no dependency-layer split.
ARG BUILD_BASE=python:3.11-bookworm
FROM ${BUILD_BASE}
WORKDIR /src
COPY . .
RUN --mount=type=secret,id=ca_bundle \
    if [ -s /run/secrets/ca_bundle ]; then export PIP_CERT=/run/secrets/ca_bundle; fi; \
    python3 -m venv /opt/restdemo; \
    /opt/restdemo/bin/pip install -r requirements.lock -r build-requirements.lock; \
    /opt/restdemo/bin/pip install --no-deps --no-build-isolation .
ENV PATH=/opt/restdemo/bin:$PATH RESTDEMO_PUBLIC_DIR=/src/public
EXPOSE 8000
CMD ["restdemo"]
