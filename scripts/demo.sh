#!/usr/bin/env bash
# Set up, generate demo logs, run the whole pipeline on them and start the
# agents' app on http://127.0.0.1:7860 (Ctrl-C stops it).
# Extra arguments go to `sparkify demo` (e.g. --workdir DIR, --no-serve).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/sparkify demo "$@"
