#!/usr/bin/env bash
# Set up (or refresh) the project's virtualenv in .venv.
#   scripts/setup.sh         runtime dependencies
#   scripts/setup.sh --dev   plus the test and lint tools
# Needs Python 3.11 and Java 17+; installs Java with apt-get where it can.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"

python=${PYTHON:-}
if [[ -z "$python" ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            python=$candidate
            break
        fi
    done
fi
if [[ -z "$python" ]]; then
    echo "error: Python 3.11 is needed (python3.11 on PATH, or PYTHON=/path/to/python3.11)." >&2
    exit 1
fi

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1
}
if ! command -v java >/dev/null || [[ "$(java_major)" -lt 17 ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "installing Java 17 (openjdk-17-jre-headless) with apt-get" >&2
        apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    else
        echo "error: Spark needs Java 17 or newer on PATH. Install it, e.g." >&2
        echo "  sudo apt-get install openjdk-17-jre-headless   (Debian/Ubuntu)" >&2
        echo "  brew install openjdk@17                        (macOS)" >&2
        exit 1
    fi
fi

[[ -x .venv/bin/python ]] || "$python" -m venv .venv
# .venv/.installed holds the hash of the pyproject.toml last installed, and
# "dev" when the test tools came with it; skip pip when that still covers us.
wanted="$(sha1sum < pyproject.toml | cut -c1-12)"
installed="$(cat .venv/.installed 2>/dev/null || true)"
if [[ "$installed" != "$wanted"* ]] || [[ -n "$extras" && "$installed" != *dev ]]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".${extras}"
    echo "$wanted${extras:+ dev}" > .venv/.installed
fi
