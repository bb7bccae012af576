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


def coco_to_h36m(xy: np.ndarray, conf: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Remap COCO-17 keypoints (..., 17, 2) and confidences (..., 17) to H36M-17.

    Derived joints (confidence = min of their sources):
    - pelvis = mid-hips; thorax = mid-shoulders; spine = midpoint of pelvis and thorax
      (H36M's spine marker sits about half-way up the trunk).
    - neck/nose = COCO nose (H36M joint 9 lies on the face, near the nose, in image projections).
    - head = 2 * mid-eyes - nose: the eyes' midpoint pushed away from the nose by the same
      distance, which lands near the forehead/top of the head where H36M's head joint lies.
    """
    xy = np.asarray(xy, dtype=np.float32)
    if conf is None:
        conf = np.ones(xy.shape[:-1], dtype=np.float32)
    conf = np.asarray(conf, dtype=np.float32)
    out = np.empty_like(xy)
    oc = np.empty_like(conf)
    for h, c in _COCO_DIRECT.items():
        out[..., h, :] = xy[..., c, :]
        oc[..., h] = conf[..., c]

    def mid(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        return 0.5 * (xy[..., a, :] + xy[..., b, :]), np.minimum(conf[..., a], conf[..., b])

    out[..., 0, :], oc[..., 0] = mid(11, 12)
    out[..., 8, :], oc[..., 8] = mid(5, 6)
    out[..., 7, :] = 0.5 * (out[..., 0, :] + out[..., 8, :])
    oc[..., 7] = np.minimum(oc[..., 0], oc[..., 8])
    out[..., 9, :], oc[..., 9] = xy[..., 0, :], conf[..., 0]
    eyes, eyes_c = mid(1, 2)
    out[..., 10, :] = 2.0 * eyes - xy[..., 0, :]
    oc[..., 10] = np.minimum(eyes_c, conf[..., 0])
    return out, oc


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
