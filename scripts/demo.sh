#!/usr/bin/env bash
# Run the safety node on the bundled real TurtleBot3 recording and print its decisions.
# Extra arguments go to `nc-safety demo` (try --help).
set -eu
cd "$(dirname "$0")/.."
. scripts/env.sh
exec nc-safety demo "$@"
