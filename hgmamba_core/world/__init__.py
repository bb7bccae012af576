"""Camera frame -> world frame for lifted poses: size, root trajectory, gravity, floor, camera.

- frame.py: rotations from an up vector, the average-adult size, root placement (pinhole);
- floor.py: stance feet, the body-up prior, the robust floor-plane fit fused with the prior;
- estimate.py: the clip's camera (pitch, roll, height, method, uncertainty) as CameraEstimate;
- focal.py: the focal length from the video's metadata (35 mm-equivalent tag), if present;
- convert.py: WorldConfig and place_in_world / to_world, one world for every person.
"""

from hgmamba_core.world.convert import (
    WorldConfig,
    WorldResult,
    camera_frame_people,
    parse_tilt,
    place_in_world,
    to_world,
)
from hgmamba_core.world.estimate import DEFAULT_TILT_DEG, CameraEstimate, solve_floor
from hgmamba_core.world.floor import ANKLE_ABOVE_FLOOR_M, fit_floor, stance_feet
from hgmamba_core.world.frame import (
    H36M_MEAN_STANDING_HEIGHT_M,
    camera_to_world_rotation,
    moving_average,
    pitch_roll_from_up,
    rescale_to_height,
    rotation_from_up,
    solve_translation,
    standing_height,
    up_from_pitch_roll,
)

__all__ = [
    "ANKLE_ABOVE_FLOOR_M",
    "DEFAULT_TILT_DEG",
    "H36M_MEAN_STANDING_HEIGHT_M",
    "CameraEstimate",
    "WorldConfig",
    "WorldResult",
    "camera_frame_people",
    "camera_to_world_rotation",
    "fit_floor",
    "moving_average",
    "parse_tilt",
    "pitch_roll_from_up",
    "place_in_world",
    "rescale_to_height",
    "rotation_from_up",
    "solve_floor",
    "solve_translation",
    "stance_feet",
    "standing_height",
    "to_world",
    "up_from_pitch_roll",
]
