"""Video files made by the tests themselves (PyAV), for the real-world input cases."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def write_av(
    path: Path,
    frames: list[np.ndarray],
    times_s: list[float] | None = None,
    rate: int = 25,
    faststart: bool = False,
    pix_fmt: str = "yuv420p",
) -> Path:
    """An H.264 mp4 written with PyAV; `times_s` sets each frame's presentation time."""
    import av

    opts = {"movflags": "+faststart"} if faststart else {}
    with av.open(str(path), mode="w", format="mp4", options=opts) as c:
        s = c.add_stream("libx264", rate=rate)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = pix_fmt
        s.codec_context.time_base = Fraction(1, 1000)
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="bgr24")
            f.pts = round((times_s[i] if times_s else i / rate) * 1000)
            f.time_base = Fraction(1, 1000)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path
