# A deliberately broken restdemo for the rollback test: the server runs, but its
# health check asks a port nothing listens on, so the task never turns healthy.
ARG IMAGE
FROM ${IMAGE}
ENV RESTDEMO_URL=http://127.0.0.1:1
