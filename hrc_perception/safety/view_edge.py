"""The space a depth camera does not see beside its view, as a distance to the robot.

A camera sees a frustum: the four planes through its centre and the image borders, from
its nearest to its farthest reading. A person outside it is invisible to it, however close
to the robot. Unless the integrator guards that space (fences, light curtains, another
sensor), it may hold a person: the distance from the robot's capsules to the outside of
the frustum is then a distance to a possible person.

The distance to the outside of a convex frustum is at least the distance to the nearest of
its bounding planes, and for a point inside it equals the distance to that plane where the
foot of the perpendicular lies on the frustum's face (the usual case for a robot the camera
watches); elsewhere the plane is nearer than the face, so the figure errs towards stopping.
A capsule's distance to a plane is its nearer end's minus its radius (a linear function is
smallest at an end of a segment). Camera frame: x right, y down, z forward; metres; pixel
centres at integers, so the image covers u in [-0.5, width - 0.5].
"""
from __future__ import annotations

import math

import numpy as np

from hrc_perception.safety.capsules import Capsules


def frustum_planes(K: np.ndarray, width_px: int, height_px: int, near_m: float, far_m: float) -> np.ndarray:
    """The camera's view as planes [6, 4]: rows (n, c) with unit inward normal n, a point p
    inside every one where n . p + c >= 0 (left, right, top, bottom, near, far)."""
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    left, right = (-0.5 - cx) / fx, (width_px - 0.5 - cx) / fx        # x / z at the borders
    top, bottom = (-0.5 - cy) / fy, (height_px - 0.5 - cy) / fy
    sides = np.array([[1.0, 0.0, -left], [-1.0, 0.0, right], [0.0, 1.0, -top], [0.0, -1.0, bottom]])
    sides /= np.linalg.norm(sides, axis=1, keepdims=True)
    planes = np.zeros((6, 4))
    planes[:4, :3] = sides
    planes[4] = [0.0, 0.0, 1.0, -near_m]
    planes[5] = [0.0, 0.0, -1.0, far_m]
    return planes


def view_edge_distance(robot: Capsules, planes: np.ndarray) -> tuple[float, int, np.ndarray, np.ndarray]:
    """The surface distance (metres, negative where a capsule reaches outside the view) from
    the robot's capsules to the outside of the view (frustum_planes), the index of the robot
    capsule end nearest it (into names_a + names_b: [0, N) a ends, [N, 2N) b ends), that
    end [3] and its foot on the plane [3] (camera frame). +inf and -1 without capsules."""
    if len(robot) == 0:
        return math.inf, -1, np.full(3, np.nan), np.full(3, np.nan)
    ends = np.concatenate([robot.a, robot.b])                       # [2N, 3]
    radius = np.concatenate([robot.radius, robot.radius])
    signed = ends @ planes[:, :3].T + planes[:, 3]                  # [2N, 6]: inside >= 0
    d = signed - radius[:, None]
    k, p = np.unravel_index(int(np.argmin(d)), d.shape)
    foot = ends[k] - signed[k, p] * planes[p, :3]
    return float(d[k, p]), int(k), ends[k].copy(), foot
