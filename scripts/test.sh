#!/usr/bin/env bash
# Set up (with the test extras), then run the whole test suite. Extra arguments go to pytest.
# pytest's exit code 5 (no tests collected) counts as a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
# sleeping, not spinning, OpenMP threads unless the caller chose a policy (as the CLI does:
# styleforge.utils.threads); the tests' own subprocesses inherit it
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
bash scripts/setup.sh test || exit $?
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
