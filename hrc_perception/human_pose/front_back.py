"""Front or back: a face in the colour image says a person faces the camera, and a 3D
skeleton that says otherwise has its left and right swapped.

From depth alone, a body seen from the front and the mirror image of it seen from the
back look much alike, so a depth network can put a person's left on their right. A face
is seen only from the front: BlazeFace (mediapipe 0.10.14's short-range face detector,
run by mediapipe's own face-detection solution) on a square around the skeleton's head.
A face found while the skeleton faces away from the camera swaps the skeleton's left and
right joints; no face decides nothing (a person facing away, or a face turned, hidden or
too small), so the check never turns a skeleton that faces the camera around.

Frames: camera optical frame (x right, y down, z forward), metres; pixels.
"""
from __future__ import annotations

import numpy as np

from hrc_perception.skeletons import COCO17_FLIP, COCO17_NAMES

LEFT = [COCO17_NAMES.index(n) for n in ("left_shoulder", "left_hip")]       # the torso's left and right joints
RIGHT = [COCO17_NAMES.index(n) for n in ("right_shoulder", "right_hip")]
_SHOULDERS = [COCO17_NAMES.index(n) for n in ("left_shoulder", "right_shoulder")]
_HIPS = [COCO17_NAMES.index(n) for n in ("left_hip", "right_hip")]
_HEAD = [COCO17_NAMES.index(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
HEAD_BOX_M = 0.5            # side of the square searched for a face, metres at the head's depth


def facing_cos(xyz_m: np.ndarray) -> float:
    """Cosine between a skeleton's forward direction and the direction from it to the
    camera (1: faces the camera, -1: faces away; NaN when a shoulder or hip is unknown):
    forward = (left - right) x up, from the shoulders and hips of xyz_m [17, 3]."""
    xyz = np.asarray(xyz_m, float)
    if not np.isfinite(xyz[LEFT + RIGHT]).all():
        return float("nan")
    left, right = xyz[LEFT].mean(0), xyz[RIGHT].mean(0)
    forward = np.cross(left - right, xyz[_SHOULDERS].mean(0) - xyz[_HIPS].mean(0))
    to_cam = -(left + right) / 2.0
    n = np.linalg.norm(forward) * np.linalg.norm(to_cam)
    return float(forward @ to_cam / n) if n > 1e-12 else float("nan")


def swap_left_right(*per_joint: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each [17, ...] array with its left and right joints exchanged."""
    return tuple(np.asarray(a)[list(COCO17_FLIP)] for a in per_joint)


class FaceCheck:
    """BlazeFace on the head of a skeleton. min_confidence: the face detector's score a
    face needs: 0.7, the lowest that found no face on any of the 130 synthetic people
    facing away of the tuning seed (2100; the detector's own default, 0.5, found one on
    14% of them: smooth dark hair seen from behind). ImportError with the install hint
    without mediapipe."""

    def __init__(self, min_confidence: float = 0.7):
        try:
            from mediapipe.python.solutions import face_detection
        except ImportError as e:
            raise ImportError("the face check needs mediapipe 0.10.14 "
                              "(pip install --no-deps -r requirements-mediapipe.txt)") from e
        self.min_confidence = float(min_confidence)
        # the solution's own threshold does not bound the scores it returns (seen: 0.64 at 0.7): filtered below
        self._fd = face_detection.FaceDetection(model_selection=0,
                                                min_detection_confidence=min(0.5, self.min_confidence))

    def close(self) -> None:
        self._fd.close()

    def face_seen(self, rgb: np.ndarray, centre_px: np.ndarray, side_px: float) -> bool:
        """Whether a face is centred (within a quarter of the side) in the square of side_px
        around centre_px [2] of rgb [H, W, 3] uint8."""
        from hrc_perception.human_pose.blazepose import crop_padded
        side = max(int(round(side_px)), 16)
        x0, y0 = int(round(centre_px[0] - side / 2)), int(round(centre_px[1] - side / 2))
        result = self._fd.process(crop_padded(rgb, x0, y0, side))
        for det in result.detections or ():
            if det.score[0] < self.min_confidence:
                continue
            b = det.location_data.relative_bounding_box
            if abs(b.xmin + b.width / 2 - 0.5) < 0.25 and abs(b.ymin + b.height / 2 - 0.5) < 0.25:
                return True
        return False

    def check(self, rgb: np.ndarray, K: np.ndarray, xyz_m: np.ndarray) -> bool | None:
        """Whether the skeleton xyz_m [17, 3] (camera frame) has left and right swapped:
        True when a face is seen at its head while it faces away (facing_cos < 0); False
        when it faces the camera, or no face is seen; None when its head or torso is
        unknown."""
        xyz = np.asarray(xyz_m, float)
        head = xyz[_HEAD][np.isfinite(xyz[_HEAD]).all(axis=1)]
        cos = facing_cos(xyz)
        if not len(head) or not np.isfinite(cos):
            return None
        c = head.mean(axis=0)
        if c[2] <= 0:
            return None
        if cos >= 0:
            return False
        uv = np.array([K[0, 0] * c[0] / c[2] + K[0, 2], K[1, 1] * c[1] / c[2] + K[1, 2]])
        return self.face_seen(rgb, uv, K[0, 0] * HEAD_BOX_M / c[2])
