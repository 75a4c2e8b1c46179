"""What the program relies on in the restdemo image (app/Dockerfile): its port and its HEALTHCHECK.

Restated for the service spec, because a spec that names no healthcheck would silently depend
on the image keeping its own; the settings use the same numbers to bound a rollout's time.
"""

CONTAINER_PORT = 8000
HEALTHCHECK_COMMAND = ["CMD", "restdemo-cli", "show", "health", "--timeout", "4"]
HEALTH_INTERVAL_SECONDS = 5
HEALTH_TIMEOUT_SECONDS = 5
HEALTH_RETRIES = 3
HEALTH_START_PERIOD_SECONDS = 10
# A new task answers its first probe one interval after it starts.
TIME_TO_HEALTHY_SECONDS = HEALTH_INTERVAL_SECONDS
