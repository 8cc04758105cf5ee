#!/usr/bin/env bash
# Run the test suite (installs the venv first when needed). Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
. scripts/env.sh
exec python -m pytest "$@"
