"""RGB-D frame sources for the capture node (pure Python: no rclpy).

A source yields :class:`CaptureFrame`\\ s (colour, depth aligned to colour, K, and
ground truth where it has any) until it ends; :mod:`.pacing` turns recorded
stamps into a wall-clock schedule. The ROS side is ``hrc_perception.ros.rgbd_capture``.
"""
from hrc_perception.capture.pacing import StampPacer
from hrc_perception.capture.sources import (BagSource, CaptureFrame, FolderSource, FrameSource, RealSenseSource,
                                            SourceError, SyntheticSource, frame_problem)

__all__ = ["BagSource", "CaptureFrame", "FolderSource", "FrameSource", "RealSenseSource", "SourceError",
           "StampPacer", "SyntheticSource", "frame_problem"]
