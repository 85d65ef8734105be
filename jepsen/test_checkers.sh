#!/usr/bin/env bash
# Unit tests of the jepsen/ checkers (stdlib only, no namespaces, no vigild).
set -euo pipefail
cd "$(dirname "$0")"
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
PYTHONDONTWRITEBYTECODE=1 exec "$py" -m unittest discover -s tests -t . -p 'test_*.py' "$@"
