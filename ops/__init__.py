"""The operator's tools against a deployed stack, beside the program that deploys it: `client` (its
Docker API, through a tunnel when need be), `health` (what `make status` shows), `answers` (what
`make up` and `make status` ask the service), `tunnel` (the Session Manager port forward's command
line) and `teardown` (what `make down` does around `pulumi destroy`)."""
