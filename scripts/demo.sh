#!/usr/bin/env bash
# The main job: set up, then stylise the bundled photos with real weights (a pretrained 26-style
# network, a style learnt now, Gatys et al. with the VGG-19) and write a results page (prints its
# path). Extra arguments go to 'styleforge demo' (e.g. --out DIR, or --cyclegan for the CycleGAN demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "styleforge demo: style transfer with real weights, about 2.5 minutes on 2 CPU cores" >&2
exec .venv/bin/styleforge demo "$@"
