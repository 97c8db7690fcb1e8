#!/usr/bin/env bash
# The main job: set up, then train a small CycleGAN on the bundled sample and write a results
# page (prints its path). Extra arguments go to 'styleforge demo' (e.g. --out DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "styleforge demo: training a small CycleGAN on the bundled sample, about 3 minutes on 2 CPU cores" >&2
exec .venv/bin/styleforge demo "$@"
