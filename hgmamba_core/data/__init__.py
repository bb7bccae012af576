"""Dataset readers (Human3.6M, VideoPose3D files, MPI-INF-3DHP) and training/test windows."""

from hgmamba_core.data.clips import PoseClip

__all__ = ["PoseClip"]
