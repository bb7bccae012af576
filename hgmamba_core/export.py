"""Writers for a Pose3DSequence: npy, json, csv and BVH, each written atomically.

Conventions (also in the README):
- npy/json/csv keep our world frame: metres, x right, y forward, z up, floor at z = 0.
- json: null for a joint whose coordinates are not finite; csv: empty x/y/z for such a joint and
  no rows at all for a person absent from a frame (every joint missing).
- BVH: Y-up, centimetres (the usual BVH unit); (x, y, z) ours -> (X, Y, Z) = (x, z, -y), a
  right-handed change of axes. Channel order "Zrotation Xrotation Yrotation" (R = Rz Rx Ry,
  intrinsic), root "Xposition Yposition Zposition" first. See `write_bvh` for the rest pose and
  how rotations are solved.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hgmamba_core.errors import HGMambaError
from hgmamba_core.fileio import atomic_path, write_text_atomic
from hgmamba_core.poses import Pose3DSequence
from hgmamba_core.skeleton import H36M_NAMES, H36M_PARENTS, NUM_JOINTS

FORMATS = ("npy", "json", "csv", "bvh", "html")  # html: the offline viewer (viewer/)
_DECIMALS = 6  # metres: 1 micrometre, far below any estimate's accuracy


# --------------------------------------------------------------------------- npy / json / csv
def write_npy(result: Pose3DSequence, path: str | os.PathLike) -> Path:
    """(frames, persons, 17, 3) float32, metres, world frame."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, result.joints.astype(np.float32))
    return Path(path)


def _jsonable(value):
    """Metadata values that json can hold; anything else becomes its str()."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    return str(value)


def metadata(result: Pose3DSequence) -> dict:
    """The header shared by pose3d.json and what `read_pose3d` needs back."""
    return {
        "fps": float(result.fps),
        "variant": result.variant,
        "checkpoint": result.checkpoint,
        "units": "m",
        "axes": result.axes,
        "joint_names": list(H36M_NAMES),
        "joint_parents": list(H36M_PARENTS),
        "track_ids": [int(t) for t in result.track_ids],
        "frames": result.num_frames,
        "persons": result.num_persons,
        **_jsonable(result.input_info),
        "meta": _jsonable(result.meta),
    }


def write_json(result: Pose3DSequence, path: str | os.PathLike) -> Path:
    """Metadata + per frame, per person (by track id), named joints [x, y, z] or null."""
    j = np.round(result.joints.astype(np.float64), _DECIMALS)
    ok = np.isfinite(j).all(axis=-1)  # (F, P, 17)
    times = result.frame_times()
    frames = []
    for f in range(result.num_frames):
        persons = []
        for p, tid in enumerate(result.track_ids):
            joints = {
                name: (j[f, p, k].tolist() if ok[f, p, k] else None)
                for k, name in enumerate(H36M_NAMES)
            }
            persons.append({"track_id": int(tid), "joints": joints})
        t = round(float(times[f]), 6) if np.isfinite(times[f]) else None
        frames.append({"frame": f, "time_s": t, "persons": persons})
    doc = {"metadata": metadata(result), "frames": frames}
    write_text_atomic(path, json.dumps(doc, separators=(",", ":"), allow_nan=False))
    return Path(path)


def write_csv(result: Pose3DSequence, path: str | os.PathLike) -> Path:
    """Long format: frame, time_s, track_id, joint, x, y, z (metres)."""
    j = result.joints.astype(np.float64)
    ok = np.isfinite(j).all(axis=-1)
    present = ok.any(axis=-1)  # (F, P): a person with no finite joint in a frame gets no rows
    times = result.frame_times()
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "time_s", "track_id", "joint", "x", "y", "z"])
        for f, p in zip(*np.nonzero(present), strict=True):
            t = f"{times[f]:.6f}" if np.isfinite(times[f]) else ""
            tid = int(result.track_ids[p])
            for k, name in enumerate(H36M_NAMES):
                xyz = [f"{v:.{_DECIMALS}f}" for v in j[f, p, k]] if ok[f, p, k] else ["", "", ""]
                w.writerow([int(f), t, tid, name, *xyz])
    return Path(path)


# --------------------------------------------------------------------------- BVH
_CM = 100.0
# ours (x right, y forward, z up) -> BVH (X, Y, Z) = (x, z, -y): Y up, right-handed.
_TO_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Rest pose (BVH frame, the body faces +Z, its left is +X): legs down, spine/neck/head up,
# arms straight out to the sides (T-pose). Used for single-child bones; the offsets of the
# children of pelvis and thorax come from the clip itself (see _frame_children).
_REST_DIR = {
    "r_knee": (0, -1, 0), "r_ankle": (0, -1, 0), "l_knee": (0, -1, 0), "l_ankle": (0, -1, 0),
    "thorax": (0, 1, 0), "head": (0, 1, 0),
    "l_elbow": (1, 0, 0), "l_wrist": (1, 0, 0), "r_elbow": (-1, 0, 0), "r_wrist": (-1, 0, 0),
}  # fmt: skip
# End Sites of the leaves (cm, in the leaf's frame): toes forward, top of head, finger tips.
_END_SITE = {"r_ankle": (0, 0, 10), "l_ankle": (0, 0, 10), "head": (0, 10, 0),
             "l_wrist": (8, 0, 0), "r_wrist": (-8, 0, 0)}  # fmt: skip
# Joints with several children get a full frame from two observed directions:
# Y = primary (up), X = secondary (to the body's left) made orthogonal to Y, Z = X x Y.
_FRAME_DIRS = {
    "pelvis": (("pelvis", "spine"), ("r_hip", "l_hip")),
    "thorax": (("spine", "thorax"), ("r_shoulder", "l_shoulder")),
}


def _children(j: int) -> list[int]:
    return [c for c, p in enumerate(H36M_PARENTS) if p == j]


def _unit(v: np.ndarray, eps: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps), n[..., 0] > eps


def _frame_from_dirs(up: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Rotation matrices (F, 3, 3) whose columns are X = left, Y = up, Z = X x Y."""
    y, _ = _unit(up)
    x = left - np.sum(left * y, axis=-1, keepdims=True) * y
    x, ok = _unit(x)
    # Degenerate (left parallel to up): any X orthogonal to Y.
    alt = np.cross(y, np.array([0.0, 0.0, 1.0]))
    alt2 = np.cross(y, np.array([1.0, 0.0, 0.0]))
    alt = np.where((np.linalg.norm(alt, axis=-1) > 1e-6)[:, None], alt, alt2)
    x = np.where(ok[:, None], x, _unit(alt)[0])
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations (F, 3, 3) taking unit vector a (3,) onto unit vectors b (F, 3)."""
    a = np.broadcast_to(a, b.shape)
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(a * b, axis=-1)
    # Half-way quaternion: q = (1 + c, a x b), normalised; for c ~ -1 use any axis orthogonal to a.
    w = 1.0 + c
    anti = w < 1e-8
    if anti.any():
        perp = np.cross(a[anti], np.array([1.0, 0.0, 0.0]))
        bad = np.linalg.norm(perp, axis=-1) < 1e-6
        perp[bad] = np.cross(a[anti][bad], np.array([0.0, 1.0, 0.0]))
        axis[anti] = _unit(perp)[0]
        w = np.where(anti, 0.0, w)
    q = np.concatenate([w[:, None], axis], axis=-1)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    del s
    return _quat_to_mat(q)


def _quat_to_mat(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)  # fmt: skip


def euler_zxy_from_matrix(r: np.ndarray) -> np.ndarray:
    """(F, 3, 3) -> (F, 3) degrees (z, x, y) with R = Rz(z) @ Rx(x) @ Ry(y)."""
    sx = np.clip(r[:, 2, 1], -1.0, 1.0)
    x = np.arcsin(sx)
    cx = np.cos(x)
    regular = cx > 1e-7
    z = np.where(regular, np.arctan2(-r[:, 0, 1], r[:, 1, 1]), np.arctan2(r[:, 1, 0], r[:, 0, 0]))
    y = np.where(regular, np.arctan2(-r[:, 2, 0], r[:, 2, 2]), 0.0)
    return np.degrees(np.stack([z, x, y], axis=-1))


def fill_nearest_valid(joints: np.ndarray) -> np.ndarray | None:
    """(F, 17, 3): copy every frame with a non-finite joint from the nearest complete frame.

    Returns None when no frame is complete. Used for BVH only (a BVH frame cannot be empty).
    """
    ok = np.isfinite(joints).all(axis=(1, 2))
    if not ok.any():
        return None
    valid = np.nonzero(ok)[0]
    idx = np.arange(len(joints))
    pos = np.clip(np.searchsorted(valid, idx), 0, len(valid) - 1)
    prev = valid[np.clip(pos - 1, 0, len(valid) - 1)]
    nxt = valid[pos]
    nearest = np.where(np.abs(idx - prev) <= np.abs(nxt - idx), prev, nxt)
    return joints[nearest]


def _position_channel_joints() -> tuple[int, ...]:
    """Children of branching joints: they get position channels (see write_bvh)."""
    out = []
    for j in range(NUM_JOINTS):
        kids = _children(j)
        if len(kids) > 1:
            out += kids
    return tuple(sorted(out))


def solve_bvh(joints_m: np.ndarray) -> dict:
    """Solve a BVH skeleton and motion for one person's complete track (F, 17, 3), metres, z up.

    Returns offsets (17, 3) cm, per-frame local rotations (F, 17, 3, 3), root positions (F, 3)
    cm and local translations (F, 17, 3) cm (used for the joints with position channels).
    """
    n = NUM_JOINTS
    p = np.asarray(joints_m, dtype=np.float64) @ _TO_BVH.T * _CM  # (F, 17, 3) BVH cm
    nf = p.shape[0]
    idx = {name: k for k, name in enumerate(H36M_NAMES)}
    glob = np.zeros((nf, n, 3, 3))
    local = np.zeros((nf, n, 3, 3))
    trans = np.zeros((nf, n, 3))  # each joint's offset from its parent, in the parent's frame
    offsets = np.zeros((n, 3))
    eye = np.broadcast_to(np.eye(3), (nf, 3, 3))

    for j in range(n):  # H36M_PARENTS lists every parent before its children
        par = H36M_PARENTS[j]
        g_par = eye if par < 0 else glob[:, par]
        if par >= 0:
            trans[:, j] = np.einsum("fji,fj->fi", g_par, p[:, j] - p[:, par])
        kids = _children(j)
        name = H36M_NAMES[j]
        if name in _FRAME_DIRS:
            (a0, a1), (b0, b1) = _FRAME_DIRS[name]
            up = p[:, idx[a1]] - p[:, idx[a0]]
            left = p[:, idx[b1]] - p[:, idx[b0]]
            glob[:, j] = _frame_from_dirs(up, left)
        elif len(kids) == 1:
            c = kids[0]
            rest = np.asarray(_REST_DIR[H36M_NAMES[c]], dtype=np.float64)
            d = np.einsum("fji,fj->fi", g_par, p[:, c] - p[:, j])  # child dir in parent's frame
            d, ok = _unit(d)
            d = np.where(ok[:, None], d, rest)  # zero-length bone: keep the rest direction
            glob[:, j] = g_par @ _swing(rest, d)
        else:  # leaf: no rotation of its own
            glob[:, j] = g_par
        local[:, j] = np.swapaxes(g_par, -1, -2) @ glob[:, j]

    # Offsets: median bone length along the rest direction for single-child bones; for the
    # children of branching joints, the median of their observed offsets in the parent's frame.
    pos_joints = set(_position_channel_joints())
    for j in range(1, n):
        par = H36M_PARENTS[j]
        length = float(np.median(np.linalg.norm(p[:, j] - p[:, par], axis=-1)))
        if j in pos_joints:
            med = np.median(trans[:, j], axis=0)
            offsets[j] = _unit(med)[0] * length
        else:
            offsets[j] = np.asarray(_REST_DIR[H36M_NAMES[j]], dtype=np.float64) * length
    return {"offsets": offsets, "rotations": local, "root": p[:, 0], "translations": trans}


def _fmt(v: float) -> str:
    s = f"{v:.6f}"
    return "0.000000" if s == "-0.000000" else s


def bvh_text(joints_m: np.ndarray, fps: float) -> str:
    """The BVH file for one person's complete track (F, 17, 3), metres, our z-up world frame.

    Hierarchy: the 17 H36M joints with H36M_PARENTS; leaves end in End Sites.
    Rest pose: a T-pose facing +Z; the hips, spine, neck and shoulders keep the clip's median
    offsets from pelvis/thorax. Rotations: pelvis and thorax get a full frame from two directions
    (up along the spine, left along hips / shoulders); every other joint with a child gets the
    smallest rotation, relative to its parent, that turns the rest bone onto the observed bone
    (so twist is inherited from the parent); leaves get none.
    Channels: the root has Xposition Yposition Zposition Zrotation Xrotation Yrotation. The six
    children of pelvis and thorax (hips, spine, neck, shoulders) also have position channels,
    holding their full local translation in the parent's frame (they replace the OFFSET, the
    convention Blender's BVH exporter writes): H36M's torso is not rigid (the shoulders and the
    neck move relative to each other), so rotations alone cannot place all three children of the
    thorax. All other joints have Zrotation Xrotation Yrotation. With these, forward kinematics
    reproduces the input exactly (up to the written precision) whenever the limb lengths are
    constant; a prediction whose limb lengths vary is drawn with the clip's median lengths.
    """
    sol = solve_bvh(joints_m)
    offsets, rot, root, trans = sol["offsets"], sol["rotations"], sol["root"], sol["translations"]
    pos_joints = set(_position_channel_joints())
    lines = ["HIERARCHY"]
    rot_ch = "Zrotation Xrotation Yrotation"

    def emit(j: int, depth: int) -> None:
        ind = "\t" * depth
        name = H36M_NAMES[j]
        if j == 0:
            lines.append(f"ROOT {name}")
        else:
            lines.append(f"{ind}JOINT {name}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}\tOFFSET {' '.join(_fmt(v) for v in offsets[j])}")
        if j == 0 or j in pos_joints:
            lines.append(f"{ind}\tCHANNELS 6 Xposition Yposition Zposition {rot_ch}")
        else:
            lines.append(f"{ind}\tCHANNELS 3 {rot_ch}")
        kids = _children(j)
        for c in kids:
            emit(c, depth + 1)
        if not kids:
            end = _END_SITE[name]
            lines.append(f"{ind}\tEnd Site")
            lines.append(f"{ind}\t{{")
            lines.append(f"{ind}\t\tOFFSET {' '.join(_fmt(v) for v in end)}")
            lines.append(f"{ind}\t}}")
        lines.append(f"{ind}}}")

    emit(0, 0)
    nf = root.shape[0]
    lines += ["MOTION", f"Frames: {nf}", f"Frame Time: {1.0 / fps:.8f}"]
    # Channel columns in hierarchy (depth-first) order, the order the parser reads them.
    order: list[int] = []

    def dfs(j: int) -> None:
        order.append(j)
        for c in _children(j):
            dfs(c)

    dfs(0)
    cols = []
    for j in order:
        eul = euler_zxy_from_matrix(rot[:, j])
        eul = np.degrees(np.unwrap(np.radians(eul), axis=0))  # no 360-degree jumps between frames
        if j == 0:
            cols.append(root)
        elif j in pos_joints:
            cols.append(trans[:, j])
        cols.append(eul)
    motion = np.concatenate(cols, axis=1)
    motion[np.abs(motion) < 5e-7] = 0.0
    body = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in motion)
    return "\n".join(lines) + "\n" + body + "\n"


def write_bvh(result: Pose3DSequence, path: str | os.PathLike) -> list[Path]:
    """One BVH per person: `path` for the first person, `<stem>_p<track id><suffix>` for others.

    Frames where a person has any non-finite joint are filled from the nearest complete frame
    (BVH has no "missing"); a person with no complete frame at all gets no file.
    """
    if not np.isfinite(result.fps) or result.fps <= 0:
        raise HGMambaError(f"BVH needs a positive fps, got {result.fps}")
    path = Path(path)
    written = []
    for p in range(result.num_persons):
        track = fill_nearest_valid(result.joints[:, p])
        if track is None:
            continue
        out = (
            path
            if p == 0
            else path.with_name(f"{path.stem}_p{int(result.track_ids[p])}{path.suffix}")
        )
        write_text_atomic(out, bvh_text(track, result.fps))
        written.append(out)
    return written


# --------------------------------------------------------------------------- all / read back
def export_all(
    result: Pose3DSequence, out_dir: str | os.PathLike, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Write pose3d.<fmt> for each format into out_dir; returns the paths written."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise HGMambaError(
            f"unknown export format(s) {', '.join(unknown)}: use {','.join(FORMATS)}"
        )
    out = Path(out_dir)
    written: list[Path] = []
    for fmt in formats:
        target = out / f"pose3d.{fmt}"
        if fmt == "npy":
            written.append(write_npy(result, target))
        elif fmt == "json":
            written.append(write_json(result, target))
        elif fmt == "csv":
            written.append(write_csv(result, target))
        elif fmt == "html":
            from hgmamba_core.viewer import write_viewer

            written.append(write_viewer(result, target))
        else:
            written += write_bvh(result, target)
    return written


def read_pose3d(result_dir: str | os.PathLike) -> Pose3DSequence:
    """Load RESULT_DIR/pose3d.npy with the metadata of RESULT_DIR/pose3d.json (if present)."""
    d = Path(result_dir)
    npy = d / "pose3d.npy"
    if not npy.is_file():
        raise HGMambaError(f"{npy} not found: expected the output folder of 'hgmamba lift'")
    try:
        joints = np.load(npy, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise HGMambaError(f"cannot read {npy}: {e}") from None
    if joints.ndim != 4 or joints.shape[2:] != (NUM_JOINTS, 3):
        raise HGMambaError(f"{npy} must be (frames, persons, 17, 3), got {joints.shape}")
    meta: dict = {}
    js = d / "pose3d.json"
    if js.is_file():
        try:
            with open(js, encoding="utf-8") as fh:
                meta = json.load(fh).get("metadata", {})
        except (OSError, ValueError, AttributeError) as e:
            raise HGMambaError(f"cannot read {js}: {e}") from None
    track_ids = meta.get("track_ids", list(range(joints.shape[1])))
    if len(track_ids) != joints.shape[1]:
        raise HGMambaError(f"{js} lists {len(track_ids)} track ids for {joints.shape[1]} persons")
    kwargs = {k: meta[k] for k in ("variant", "checkpoint", "axes") if isinstance(meta.get(k), str)}
    return Pose3DSequence(joints=joints, track_ids=np.asarray(track_ids), fps=float(meta.get("fps", 0.0) or 0.0),
                          meta=meta.get("meta", {}) or {}, **kwargs)  # fmt: skip
