"""The sideways-video hint: people's 2D trunks turned the same way name the --rotate to use."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.orientation import sideways_note, turn_to_upright
from hgmamba_core.skeleton import H36M_PELVIS, H36M_THORAX


def people(direction: tuple[float, float], frames: int = 12, persons: int = 2):
    """(F, P, 17, 2) px with each trunk (pelvis -> thorax) 60 px along `direction`, scores 0.9."""
    rng = np.random.default_rng(0)
    kp = rng.uniform(100, 500, size=(frames, persons, 17, 2))
    kp[..., H36M_THORAX, :] = kp[..., H36M_PELVIS, :] + 60 * np.asarray(direction)
    kp[..., H36M_THORAX, :] += rng.normal(0, 8, size=(frames, persons, 2))  # a lean, not a turn
    return kp, np.full((frames, persons, 17), 0.9)


@pytest.mark.parametrize(
    ("direction", "turn", "words"),
    [((0, -1), 0, None), ((-1, 0), 90, "heads to the left"), ((0, 1), 180, "upside down"),
     ((1, 0), 270, "heads to the right")],
)  # fmt: skip
def test_the_turn_that_stands_people_up(direction, turn, words):
    kp, sc = people(direction)
    got, share, n = turn_to_upright(kp, sc)
    assert (got, n) == (turn, 24) and share > 0.9
    note = sideways_note(kp, sc)
    if words is None:
        assert note is None
    else:
        assert words in note and note.endswith(f"--rotate {turn}")
        # already turned by 90 (and still sideways): the note names the total
        assert sideways_note(kp, sc, rotate=90).endswith(f"--rotate {(90 + turn) % 360}")


def test_unsure_cases_say_nothing():
    kp, sc = people((-1, 0), frames=4)  # 8 person-frames: too few to say
    assert sideways_note(kp, sc) is None
    kp, sc = people((-1, 0))
    sc[..., H36M_THORAX] = 0.2  # unconfident trunks do not count
    assert turn_to_upright(kp, sc)[2] == 0 and sideways_note(kp, sc) is None
    kp, sc = people((-1, 0))
    up, _ = people((0, -1))
    kp[:6] = up[:6]  # half upright, half lying: people lying down, not a turned video
    assert sideways_note(kp, sc) is None
    kp[:] = np.nan  # nobody there
    assert turn_to_upright(kp, sc) == (0, 0.0, 0)


def test_lift_says_it_for_sideways_keypoints(untrained_xs_ckpt):
    """Through the pipeline: an array of people lying the same way gets the note in the result."""
    from hgmamba_core import HGMamba

    kp, sc = people((-1, 0), frames=30, persons=1)
    arr = np.concatenate([kp[:, 0], sc[:, 0, :, None]], axis=-1)  # (F, 17, 3) H36M order
    model = HGMamba(untrained_xs_ckpt, device="cpu")
    res = model.lift(arr, size=(640, 640), fps=25.0, layout="h36m")
    assert any("--rotate 90" in n for n in res.notes)
    upright = np.concatenate([people((0, -1), frames=30, persons=1)[0][:, 0], arr[..., 2:]], -1)
    res = model.lift(upright, size=(640, 640), fps=25.0, layout="h36m")
    assert not any("--rotate" in n for n in res.notes)
