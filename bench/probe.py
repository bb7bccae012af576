"""What the detector-size look (detectors/probe.py) picks on our clips, and what it costs.

Per clip: the size chosen for one person (`--person main`) and for everyone (`--person all`),
the person height it was judged on, the look's wall time, and that time as a multiple of one
whole-frame detection at 640 on the same machine in the same run (what the look adds to a run
that would have used 640 anyway). Clips: the demo, the shared vtest.avi's first 10 s, and the
two 720p clips bench/lift.py makes (one person scaled up; the whole scene padded to 720p).

    python bench/probe.py [--backend auto|torch|openvino]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lift import make_720p, make_single_720p, source_video  # noqa: E402

from detectors.probe import probe_imgsz  # noqa: E402
from detectors.yolo import YoloPoseDetector  # noqa: E402
from hgmamba_core.video import VideoReader, iter_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def clips(tmp: Path) -> dict[str, Path]:
    shared = ROOT.parent / "shared" / "media" / "vtest_first10s.mp4"
    out = {"demo 768x576": ROOT / "assets" / "demo" / "vtest_10s.mp4"}
    if shared.is_file():
        out["vtest first 10 s"] = shared
    out["one person 720p"] = make_single_720p(source_video(), tmp / "single.mp4", 100)
    out["scene padded 720p"] = make_720p(source_video(), tmp / "pad.mp4", 100)
    return out


def one_frame_s(det: YoloPoseDetector, path: Path, repeats: int = 3) -> float:
    frame = next(iter(iter_frames(path)))
    det.detect(frame)  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        det.detect(frame)
    return (time.perf_counter() - t) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"{'clip':20s} {'who':5s} {'size':>5s} {'height px':>9s} {'look s':>7s} {'x 1 frame':>9s}"
        )
        for name, path in clips(Path(tmp)).items():
            with VideoReader(path) as r:
                size = r.info.size
            det = YoloPoseDetector(imgsz=640, device="cpu", backend=args.backend, frame_size=size)
            frame_s = one_frame_s(det, path)
            for who, main_only in (("main", True), ("all", False)):
                t = time.perf_counter()
                p = probe_imgsz(path, det, main_only=main_only)
                dt = time.perf_counter() - t
                print(
                    f"{name:20s} {who:5s} {p.imgsz:5d} {p.height_px:9.0f} {dt:7.2f} "
                    f"{dt / frame_s:9.1f}"
                )


if __name__ == "__main__":
    main()
