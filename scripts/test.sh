#!/usr/bin/env bash
# Set up with the test tools and run the test suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
export GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/pytest "$@"
