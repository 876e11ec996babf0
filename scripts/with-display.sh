#!/usr/bin/env bash
# Runs a command with a display: the current one, or a virtual X server.
set -euo pipefail
if [ -n "${DISPLAY:-}" ] || [ "$(uname)" != Linux ]; then exec "$@"; fi
exec xvfb-run -a -s "-screen 0 1600x1000x24" "$@"
