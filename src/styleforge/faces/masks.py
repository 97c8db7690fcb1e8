"""Mask clean-up shared by the mattings of :mod:`.segment` and :mod:`.mediapipe_models` (a
module of its own so that neither imports the other's private names)."""
from __future__ import annotations

import numpy as np

from ..utils.opencv import opencv

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 of a face, in pixels


def person_part(fg: np.ndarray, face_box: Box | None) -> np.ndarray:
    """Keep the connected part of ``fg`` that holds the face centre (else the largest); fill
    its holes (background seen through the part, e.g. between an arm and the body, stays)."""
    cv2 = opencv()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return fg
    h, w = fg.shape
    keep = 0
    if face_box is not None:
        cx = int(min(w - 1, max(0, (face_box[0] + face_box[2]) / 2)))
        cy = int(min(h - 1, max(0, (face_box[1] + face_box[3]) / 2)))
        keep = labels[cy, cx]
    if keep == 0:
        keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    part = (labels == keep).astype(np.uint8)
    # holes: background components of the inverse that do not touch the border
    inv = 1 - part
    n2, lab2 = cv2.connectedComponents(inv, connectivity=4)
    border = set(np.unique(np.concatenate([lab2[0], lab2[-1], lab2[:, 0], lab2[:, -1]])).tolist())
    for i in range(1, n2):
        if i not in border:
            part[lab2 == i] = 1
    return part
