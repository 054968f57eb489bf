#!/bin/bash
# Container HEALTHCHECK: GET /healthz over bash's /dev/tcp, so the runtime image needs no HTTP client.
# Liveness only (200 while the process answers); readiness is /readyz, for load balancers.
set -eu
exec 3<>"/dev/tcp/127.0.0.1/${GPTNEO_PORT:-8000}"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 2 _ status _ <&3
[ "$status" = "200" ]
