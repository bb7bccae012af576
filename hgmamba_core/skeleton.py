"""Every joint table in one place: H36M-17, COCO-17, MPII-16 and MPI-INF-3DHP-17.

Layouts, parents, left/right pairs, colours, the hyperedges of the paper's Eq. 15 and the
remaps between layouts all live here so that no other module hard-codes a joint index.
"""

from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------- H36M-17
H36M_NAMES: tuple[str, ...] = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
    "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)  # fmt: skip
H36M_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M_LEFT: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
H36M_RIGHT: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
H36M_ROOT = 0
NUM_JOINTS = 17
# (child, parent) of the 8 bones between two limb joints (thigh, shin, upper arm, forearm),
# left side first: a rigid body keeps these lengths (bench/quality.py, tests/test_real_clip.py)
H36M_LIMB_BONES: tuple[tuple[int, int], ...] = tuple(
    (c, H36M_PARENTS[c])
    for c in H36M_LEFT + H36M_RIGHT
    if H36M_PARENTS[c] in H36M_LEFT + H36M_RIGHT
)

# Joints sorted by side, used for drawing: left limbs blue, right limbs red, centre grey.
COLOR_LEFT = (0.20, 0.45, 0.85)
COLOR_RIGHT = (0.85, 0.25, 0.20)
COLOR_CENTER = (0.35, 0.35, 0.35)


def h36m_bones() -> list[tuple[int, int]]:
    """(parent, child) pairs of the H36M-17 tree."""
    return [(p, c) for c, p in enumerate(H36M_PARENTS) if p >= 0]


def joint_side(j: int) -> str:
    """'left', 'right' or 'center' for an H36M-17 joint."""
    if j in H36M_LEFT:
        return "left"
    if j in H36M_RIGHT:
        return "right"
    return "center"


def bone_color(child: int) -> tuple[float, float, float]:
    """RGB (0..1) of the bone ending at `child`: the side of the child joint."""
    return {"left": COLOR_LEFT, "right": COLOR_RIGHT, "center": COLOR_CENTER}[joint_side(child)]


def flip_permutation() -> np.ndarray:
    """Index array that swaps left and right H36M-17 joints (used with x -> -x)."""
    perm = np.arange(NUM_JOINTS)
    perm[list(H36M_LEFT)] = H36M_RIGHT
    perm[list(H36M_RIGHT)] = H36M_LEFT
    return perm


# Hyperedges of the paper's Eq. 15 (H36M-17 indices). Part scale splits each body-scale edge in two:
# torso+neck | head, hip+knee | foot, shoulder+elbow | wrist.
HYPEREDGES_PART: tuple[tuple[int, ...], ...] = (
    (0, 7, 8, 9), (10,),  # p1, p2: torso + neck | head
    (1, 2), (3,),  # p3, p4: right hip, knee | right foot
    (4, 5), (6,),  # p5, p6: left hip, knee | left foot
    (14, 15), (16,),  # p7, p8: right shoulder, elbow | right wrist
    (11, 12), (13,),  # p9, p10: left shoulder, elbow | left wrist
)  # fmt: skip
HYPEREDGES_BODY: tuple[tuple[int, ...], ...] = (
    (0, 7, 8, 9, 10),  # b1 torso + head
    (1, 2, 3),  # b2 right leg
    (4, 5, 6),  # b3 left leg
    (14, 15, 16),  # b4 right arm
    (11, 12, 13),  # b5 left arm
)


def incidence_matrix(
    edges: tuple[tuple[int, ...], ...], num_joints: int = NUM_JOINTS
) -> np.ndarray:
    """Hypergraph incidence H (joints x hyperedges), H[v, e] = 1 when joint v is in edge e."""
    h = np.zeros((num_joints, len(edges)), dtype=np.float32)
    for e, joints in enumerate(edges):
        h[list(joints), e] = 1.0
    return h


# --------------------------------------------------------------------------- COCO-17
COCO_NAMES: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)  # fmt: skip
COCO_PARENTS: tuple[int, ...] = (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14)

# H36M joints that have one COCO joint as their direct source.
_COCO_DIRECT = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8, 16: 10}


# Derived H36M joints (no detector keypoint of their own) and the joints they are made from.
H36M_PELVIS, H36M_SPINE, H36M_THORAX, H36M_NECK_NOSE, H36M_HEAD = 0, 7, 8, 9, 10
H36M_HIPS: tuple[int, int] = (1, 4)
H36M_SHOULDERS: tuple[int, int] = (11, 14)


def synthesize_derived_joints(
    xy: np.ndarray,
    conf: np.ndarray,
    nose: tuple[np.ndarray, np.ndarray] | None = None,
    eyes: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-make H36M joints that a COCO detector does not give, from their neighbours.

    The one rule the front end (`coco_to_h36m`) and training both use, so the lifter learns on
    the same derived joints it gets at inference (confidence = min of the sources):
    - pelvis = mid-hips; thorax = mid-shoulders; spine = midpoint of pelvis and thorax
      (H36M's spine marker sits about half-way up the trunk);
    - with `nose` ((..., 2), (...)): neck/nose = the nose (H36M joint 9 lies on the face);
    - with `eyes` (their midpoint and confidence) too: head = 2 * mid-eyes - nose, the eyes'
      midpoint pushed away from the nose by the same distance, near H36M's head joint.
    Without them, neck/nose and head keep their values. Returns copies (..., 17, 2), (..., 17).
    """
    out = np.array(xy, dtype=np.float32, copy=True)
    oc = np.array(conf, dtype=np.float32, copy=True)
    (lh, rh), (ls, rs) = H36M_HIPS, H36M_SHOULDERS
    out[..., H36M_PELVIS, :] = 0.5 * (out[..., lh, :] + out[..., rh, :])
    oc[..., H36M_PELVIS] = np.minimum(oc[..., lh], oc[..., rh])
    out[..., H36M_THORAX, :] = 0.5 * (out[..., ls, :] + out[..., rs, :])
    oc[..., H36M_THORAX] = np.minimum(oc[..., ls], oc[..., rs])
    out[..., H36M_SPINE, :] = 0.5 * (out[..., H36M_PELVIS, :] + out[..., H36M_THORAX, :])
    oc[..., H36M_SPINE] = np.minimum(oc[..., H36M_PELVIS], oc[..., H36M_THORAX])
    if nose is not None:
        out[..., H36M_NECK_NOSE, :], oc[..., H36M_NECK_NOSE] = nose
        if eyes is not None:
            out[..., H36M_HEAD, :] = 2.0 * eyes[0] - nose[0]
            oc[..., H36M_HEAD] = np.minimum(eyes[1], nose[1])
    return out, oc


def coco_to_h36m(xy: np.ndarray, conf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Remap COCO-17 keypoints (..., 17, 2) and confidences (..., 17) to H36M-17.

    Direct joints are copied; pelvis, spine, thorax, neck/nose and head come from
    `synthesize_derived_joints` (the rule training uses too).
    """
    xy = np.asarray(xy, dtype=np.float32)
    if conf is None:
        conf = np.ones(xy.shape[:-1], dtype=np.float32)
    conf = np.asarray(conf, dtype=np.float32)
    out = np.zeros_like(xy)
    oc = np.zeros_like(conf)
    for h, c in _COCO_DIRECT.items():
        out[..., h, :] = xy[..., c, :]
        oc[..., h] = conf[..., c]
    eyes = (0.5 * (xy[..., 1, :] + xy[..., 2, :]), np.minimum(conf[..., 1], conf[..., 2]))
    return synthesize_derived_joints(out, oc, nose=(xy[..., 0, :], conf[..., 0]), eyes=eyes)


# --------------------------------------------------------------------------- MediaPipe-33
# BlazePose's 33 landmarks -> COCO-17 (nose, eyes, ears, shoulders ... ankles; its eye index is
# the eye centre): what bench/quality.py needs to put MediaPipe's 3D on our skeleton.
MEDIAPIPE_TO_COCO: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


def mediapipe_to_h36m(
    x: np.ndarray, visibility: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe Pose landmarks (..., 33, C) and visibilities (..., 33) -> H36M-17 by way of
    COCO-17 and the same derived-joint rule as the detector's keypoints (`coco_to_h36m`)."""
    idx = list(MEDIAPIPE_TO_COCO)
    x = np.asarray(x)
    vis = None if visibility is None else np.asarray(visibility)[..., idx]
    return coco_to_h36m(x[..., idx, :], vis)


# --------------------------------------------------------------------------- MPII-16
MPII_NAMES: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck",
    "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip
# H36M index -> MPII index for the 16 joints with a counterpart (H36M spine, 7, has none).
_MPII_FOR_H36M = {0: 6, 1: 2, 2: 1, 3: 0, 4: 3, 5: 4, 6: 5, 8: 7, 9: 8, 10: 9,
                  11: 13, 12: 14, 13: 15, 14: 12, 15: 11, 16: 10}  # fmt: skip


def mpii_to_h36m(xy: np.ndarray) -> np.ndarray:
    """Map Stacked-Hourglass MPII-16 (..., 16, 2) to H36M-17 (..., 17, 2).

    Semantic mapping (pelvis->pelvis, thorax->thorax, upper neck->neck/nose, head top->head);
    H36M's spine has no MPII counterpart and is the midpoint of pelvis and thorax, the same
    rule as the COCO remap.
    """
    xy = np.asarray(xy, dtype=np.float32)
    out = np.empty(xy.shape[:-2] + (NUM_JOINTS, xy.shape[-1]), dtype=np.float32)
    for h, m in _MPII_FOR_H36M.items():
        out[..., h, :] = xy[..., m, :]
    out[..., 7, :] = 0.5 * (out[..., 0, :] + out[..., 8, :])
    return out


# --------------------------------------------------------------------------- MPI-INF-3DHP-17
MPI3DHP_NAMES: tuple[str, ...] = (
    "head_top", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "head",
)  # fmt: skip
MPI3DHP_ROOT = 14
# H36M_FROM_3DHP[h] = index in the 3DHP-17 layout of the joint that plays H36M joint h.
H36M_FROM_3DHP: tuple[int, ...] = (14, 8, 9, 10, 11, 12, 13, 15, 1, 16, 0, 5, 6, 7, 2, 3, 4)


def mpi3dhp_to_h36m(x: np.ndarray) -> np.ndarray:
    """Reorder 3DHP-17 joints (..., 17, C) into the H36M-17 layout."""
    return np.asarray(x)[..., list(H36M_FROM_3DHP), :]


def h36m_to_mpi3dhp(x: np.ndarray) -> np.ndarray:
    """Reorder H36M-17 joints (..., 17, C) into the 3DHP-17 layout (inverse of mpi3dhp_to_h36m)."""
    inv = np.argsort(np.asarray(H36M_FROM_3DHP))
    return np.asarray(x)[..., inv, :]
