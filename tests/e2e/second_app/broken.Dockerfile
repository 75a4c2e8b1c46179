# The second app, broken for the rollback test: it serves, but its check asks a port nothing
# listens on, so no task turns healthy.
ARG IMAGE
FROM ${IMAGE}
ENV CHECK_URL=http://127.0.0.1:1/ready
