import numpy as np

from hgmamba_core import skeleton as sk


def test_h36m_tables_consistent():
    assert len(sk.H36M_NAMES) == len(sk.H36M_PARENTS) == sk.NUM_JOINTS
    assert sk.H36M_PARENTS[sk.H36M_ROOT] == -1
    assert len(sk.h36m_bones()) == 16
    for left, right in zip(sk.H36M_LEFT, sk.H36M_RIGHT, strict=True):
        assert sk.H36M_NAMES[left].replace("l_", "") == sk.H36M_NAMES[right].replace("r_", "")
    names = [(sk.H36M_NAMES[c], sk.H36M_NAMES[p]) for c, p in sk.H36M_LIMB_BONES]
    assert names[:4] == [("l_knee", "l_hip"), ("l_ankle", "l_knee"), ("l_elbow", "l_shoulder"),
                         ("l_wrist", "l_elbow")]  # fmt: skip
    assert [(a.replace("l_", "r_"), b.replace("l_", "r_")) for a, b in names[:4]] == names[4:]


def test_flip_permutation_is_involution():
    p = sk.flip_permutation()
    assert (p[p] == np.arange(17)).all()
    assert p[1] == 4 and p[16] == 13 and p[0] == 0


def test_hyperedges_cover_every_joint_once():
    for edges, n in ((sk.HYPEREDGES_PART, 10), (sk.HYPEREDGES_BODY, 5)):
        h = sk.incidence_matrix(edges)
        assert h.shape == (17, n)
        assert (h.sum(1) == 1).all()


def test_coco_to_h36m_geometry():
    # A hand-made upright COCO pose in image coordinates (y down).
    coco = np.zeros((17, 2), np.float32)
    coco[0] = (50, 20)  # nose
    coco[1], coco[2] = (54, 16), (46, 16)  # eyes
    coco[3], coco[4] = (58, 18), (42, 18)
    coco[5], coco[6] = (65, 40), (35, 40)  # shoulders
    coco[7], coco[8] = (70, 60), (30, 60)
    coco[9], coco[10] = (72, 80), (28, 80)
    coco[11], coco[12] = (60, 90), (40, 90)  # hips
    coco[13], coco[14] = (60, 120), (40, 120)
    coco[15], coco[16] = (60, 150), (40, 150)
    conf = np.linspace(0.5, 1.0, 17).astype(np.float32)
    h, c = sk.coco_to_h36m(coco, conf)
    np.testing.assert_allclose(h[0], (50, 90))  # pelvis = mid hips
    np.testing.assert_allclose(h[8], (50, 40))  # thorax = mid shoulders
    np.testing.assert_allclose(h[7], (50, 65))  # spine half-way
    np.testing.assert_allclose(h[9], (50, 20))  # nose
    np.testing.assert_allclose(h[10], (50, 12))  # head above the eyes
    np.testing.assert_allclose(h[1], coco[12])  # right hip from COCO right hip
    np.testing.assert_allclose(h[13], coco[9])  # left wrist
    assert c[0] == min(conf[11], conf[12])
    assert c[7] == min(conf[11], conf[12], conf[5], conf[6])
    # head above nose above thorax above pelvis above ankles (y down)
    assert h[10, 1] < h[9, 1] < h[8, 1] < h[0, 1] < h[3, 1]


def test_3dhp_round_trip_and_names():
    x = np.random.default_rng(0).normal(size=(5, 17, 3))
    np.testing.assert_array_equal(sk.h36m_to_mpi3dhp(sk.mpi3dhp_to_h36m(x)), x)
    for h, m in enumerate(sk.H36M_FROM_3DHP):
        a, b = sk.H36M_NAMES[h], sk.MPI3DHP_NAMES[m]
        assert a == b or {a, b} in ({"thorax", "neck"}, {"neck_nose", "head"}, {"head", "head_top"})


def test_mpii_to_h36m_matches_fixture(h36m_mini):
    sh = h36m_mini["sh/S9/Directions.54138969"]
    gt = h36m_mini["S9/Directions.54138969"]
    mapped = sk.mpii_to_h36m(sh)
    assert mapped.shape == gt.shape
    limbs = [1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16]
    err = np.linalg.norm(mapped[:, limbs] - gt[:, limbs], axis=-1).mean()
    assert err < 20.0, err  # limbs agree within SH's ~12 px noise


def test_mediapipe_to_h36m_names_and_derived_joints():
    # BlazePose's landmark names (its documentation's order) for the indices the table uses
    mp_names = {0: "nose", 2: "left_eye", 5: "right_eye", 7: "left_ear", 8: "right_ear",
                11: "left_shoulder", 12: "right_shoulder", 13: "left_elbow", 14: "right_elbow",
                15: "left_wrist", 16: "right_wrist", 23: "left_hip", 24: "right_hip",
                25: "left_knee", 26: "right_knee", 27: "left_ankle", 28: "right_ankle"}  # fmt: skip
    for coco, mp in enumerate(sk.MEDIAPIPE_TO_COCO):
        assert mp_names[mp].replace("left_", "l_").replace("right_", "r_") == sk.COCO_NAMES[coco]
    x = np.arange(33 * 3, dtype=np.float32).reshape(33, 3)  # landmark k = (3k, 3k+1, 3k+2)
    vis = np.linspace(0.1, 0.9, 33).astype(np.float32)
    h, c = sk.mediapipe_to_h36m(x[None], vis[None])
    assert h.shape == (1, 17, 3) and c.shape == (1, 17)
    np.testing.assert_allclose(h[0, 5], x[25])  # H36M left knee <- BlazePose left knee
    np.testing.assert_allclose(h[0, 16], x[16])  # right wrist
    np.testing.assert_allclose(h[0, 0], 0.5 * (x[23] + x[24]))  # pelvis = mid hips
    np.testing.assert_allclose(h[0, 8], 0.5 * (x[11] + x[12]))  # thorax = mid shoulders
    assert c[0, 0] == min(vis[23], vis[24])
