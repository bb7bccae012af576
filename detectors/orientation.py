"""Do the people look turned in the image? A hint for videos that play sideways.

A file whose rotation tag was lost (re-muxed, messaged, screen-recorded) plays sideways: every
person lies along the image's x axis, and the lifter and world frame, which take image-up as
roughly up, return bodies lying on their side with the floor beside them. That cannot be told
from one lying person for sure, so this only measures and `hgmamba lift` says it, naming the
`--rotate` that would stand them up.
"""

from __future__ import annotations

import numpy as np

from hgmamba_core.skeleton import H36M_PELVIS, H36M_THORAX

MIN_SAMPLES = 10  # confident person-frames needed to say anything
MIN_SHARE = 0.75  # of them pointing the same turned way
MIN_CONF = 0.5
MIN_TRUNK_PX = 8.0


def turn_to_upright(keypoints: np.ndarray, scores: np.ndarray) -> tuple[int, float, int]:
    """(F, P, 17, 2) px H36M-17 + (F, P, 17) scores -> (rotate, share, samples).

    Each confident person-frame's pelvis -> thorax direction is put in the nearest quarter
    (up, head right, head down, head left); `rotate` is the clockwise turn (0, 90, 180, 270)
    that stands the most common quarter up, `share` that quarter's share of the `samples`.
    """
    trunk = keypoints[..., H36M_THORAX, :] - keypoints[..., H36M_PELVIS, :]
    conf = np.minimum(scores[..., H36M_THORAX], scores[..., H36M_PELVIS])
    ok = np.isfinite(trunk).all(-1) & (np.nan_to_num(conf) >= MIN_CONF)
    ok &= np.linalg.norm(np.nan_to_num(trunk), axis=-1) >= MIN_TRUNK_PX
    v = trunk[ok]
    if len(v) == 0:
        return 0, 0.0, 0
    # clockwise angle from image-up (y points down): 0 up, 90 head right, 180 down, 270 left
    ang = np.degrees(np.arctan2(v[:, 0], -v[:, 1])) % 360.0
    quarter = np.round(ang / 90.0).astype(int) % 4
    counts = np.bincount(quarter, minlength=4)
    q = int(np.argmax(counts))
    return (360 - 90 * q) % 360, float(counts[q] / len(v)), int(len(v))


def sideways_note(keypoints: np.ndarray, scores: np.ndarray, rotate: int = 0) -> str | None:
    """One line when most people look turned, naming the --rotate that stands them up."""
    turn, share, n = turn_to_upright(keypoints, scores)
    if turn == 0 or n < MIN_SAMPLES or share < MIN_SHARE:
        return None
    where = {90: "heads to the left", 180: "upside down", 270: "heads to the right"}[turn]
    total = (rotate + turn) % 360
    return (
        f"the people look turned ({where} in {100 * share:.0f} % of {n} person-frames): "
        f"if the video plays sideways, lift it again with --rotate {total}"
    )
