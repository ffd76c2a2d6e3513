"""The depth-space distance: the robot against everything the depth camera sees move.

Needs no colour network. Of one depth frame [H, W] (metres, z, 0 = invalid):

0. depth edges: a pixel whose 3x3 neighbourhood spans more than ``edge_disparity_px``
   of stereo disparity (fx * baseline / z; a stereo camera's noise is about constant in
   disparity, so a smooth surface, slanted or far, spans far less) is invalid. Flying
   pixels sit on such edges, between the near and the far surface, where nothing is; as
   invalid pixels they count where they touch a body (step 3) and nowhere else;
1. foreground: the pixels nearer than the cell's static background
   (:class:`~hrc_perception.safety.background.BackgroundDepth`), and every valid pixel
   where there is no background;
2. explained (the robot, parts, people): foreground points within ``explain_margin_m`` of the robot's capsules, or
   of its link surfaces (:class:`~hrc_perception.safety.robot_surface.RobotSurface`, the
   margin growing with the depth noise as the foreground tolerance does), both posed at
   joint_states with the camera-to-robot pose (parts are not explained yet: a part moved
   off its background place counts as foreground). Points near a fresh skeleton's capsules are that person (judged at
   the person's speed). What is not explained is possibly a person;
3. blocks: the image in squares of ``block_px``; a block is occupied when at least
   ``min_block_fill`` of its pixels are unexplained foreground (single flying pixels on
   depth edges are not a body); its depth is the nearest of those pixels. A block whose
   pixels are mostly invalid (occlusion shadows, dropouts) next to an occupied block takes
   that block's depth, up to ``hole_fill_blocks`` blocks away: a hole beside a person is
   counted as the person;
4. each occupied block is the ray behind its nearest point: the camera ray through the
   block's centre from that depth to the block's farthest background (``max_depth_m``
   where there is none), as a capsule whose radius covers the block's frustum. What is
   behind a foreground surface is unseen and may hold a person (Flacco et al. 2012);
5. the distance: the closest of those capsules to the robot's capsules (surface to
   surface, metres, negative on overlap);
6. the space beside the view (``unseen_space``): 'occupied' (the default) takes the
   distance from the robot to the outside of the camera's view as that of a possible
   person (:mod:`~hrc_perception.safety.view_edge`): nobody is seen there, so nobody is
   known to be absent; 'guarded' leaves it out, for a cell whose integrator keeps people
   out of every place within the robot's protective distance that the camera cannot see.

Not counted: what hides behind the robot's own links (the robot's shadow), and holes far
from any foreground (a body larger than a hole shows around it). The smallest body part
seen is about ``block_px`` pixels across (2 cm at 3 m with 4 px at fx 615 px).

Camera: pinhole K [3, 3] of the depth image, no distortion; capsules in its frame.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from hrc_perception.geometry import mask_points_cam_m
from hrc_perception.safety.background import BackgroundDepth, blocks
from hrc_perception.safety.capsules import Capsules, pairwise_closest, point_segment_distances
from hrc_perception.safety.robot_surface import RobotSurface
from hrc_perception.safety.view_edge import frustum_planes, view_edge_distance


@dataclass(frozen=True)
class DepthSpaceParams:
    block_px: int = 4                # block side (pixels)
    min_block_fill: float = 0.25     # fraction of a block's pixels that must be unexplained foreground
    explain_margin_m: float = 0.04   # points this close to the robot's capsules or surface are explained
    hole_fill_blocks: int = 3        # holes up to this many blocks from an occupied block are occupied
    min_hole_fill: float = 0.5       # a block is a hole when this fraction of its pixels is invalid
    edge_disparity_px: float = 1.0   # depth edges: a 3x3 span of more disparity is invalid (0: none removed)
    stereo_baseline_m: float = 0.05  # the depth camera's stereo baseline (D435: 50 mm)
    max_depth_m: float = 10.0        # where a ray ends without a background behind it; farther readings: invalid
    person_margin_m: float = 0.10    # points this close to a fresh skeleton's capsules are that person's
    unseen_space: str = "occupied"   # beside the view: 'occupied' (a possible person) or 'guarded' (nobody)
    min_depth_m: float = 0.28        # the camera's nearest reading: nearer space is unseen too

    def __post_init__(self):
        if not (self.block_px >= 1 and 0 < self.min_block_fill <= 1 and 0 < self.min_hole_fill <= 1
                and self.explain_margin_m >= 0 and self.stereo_baseline_m > 0 and self.hole_fill_blocks >= 0
                and 0 <= self.min_depth_m < self.max_depth_m and self.unseen_space in UNSEEN_SPACE):
            raise ValueError(f"invalid depth-space parameters: {self}")


UNSEEN_SPACE = ("occupied", "guarded")


@dataclass
class DepthSpaceResult:
    """The closest unexplained foreground to the robot in one frame.

    distance_m: surface distance (metres; +inf when nothing is occupied). pixel_uv: the
    deciding block's centre (pixels; None when nothing is occupied). robot_joint: the
    robot joint nearest the contact. point_m / point_robot_m: closest points on the ray's
    and the robot capsule's axes (camera frame, metres). occupied_blocks, filled_holes:
    counts; explained_px: foreground pixels explained by the robot; foreground_px: all
    foreground pixels; invalid_fraction: of the frame;
    lost_background_fraction: of the pixels whose background read a depth in nearly every
    empty-cell frame (``BackgroundDepth.reliable``), those that read nothing now (without
    any such pixel: the invalid fraction). people: person id -> the closest block that
    person's fresh skeleton explains (its capsules' points; see ``depth_space_distance``).
    view_edge: with unseen_space 'occupied', the outside of the camera's view as a block
    (its pixel: the foot's projection clamped to the image), else None."""
    distance_m: float
    pixel_uv: tuple[float, float] | None = None
    robot_joint: str = ""
    point_m: np.ndarray | None = None
    point_robot_m: np.ndarray | None = None
    occupied_blocks: int = 0
    filled_holes: int = 0
    explained_px: int = 0
    foreground_px: int = 0
    invalid_fraction: float = 0.0
    lost_background_fraction: float = 0.0
    people: dict[int, "ClosestBlock"] = field(default_factory=dict)
    view_edge: "ClosestBlock | None" = None
    label_image: np.ndarray | None = None    # with label_image=True: int8 [H, W] of LABEL_* per pixel


@dataclass
class ClosestBlock:
    """The closest block of one group of foreground (one person's): surface distance to the
    robot (metres), the block's centre (pixels), the robot joint nearest the contact, the
    closest points on the ray's and the robot's axes (camera frame, metres)."""
    distance_m: float
    pixel_uv: tuple[float, float]
    robot_joint: str
    point_m: np.ndarray
    point_robot_m: np.ndarray


def remove_depth_edges(depth_m: np.ndarray, fx_px: float, baseline_m: float, disparity_px: float) -> np.ndarray:
    """depth_m [H, W] (metres, 0 = invalid, float32) with every pixel whose valid 3x3
    neighbours span more than disparity_px of disparity fx * baseline / z set to 0 (a
    copy; disparity_px <= 0: none)."""
    d = np.asarray(depth_m, dtype=np.float32)
    if disparity_px <= 0:
        return d.copy()
    with np.errstate(divide="ignore"):
        q = np.where(d > 0, np.float32(fx_px * baseline_m) / d, np.float32(0.0))    # disparity, 0 = invalid
    hi = _filter3(q, np.maximum)
    lo = _filter3(np.where(q > 0, q, np.float32(np.inf)), np.minimum)
    return np.where((d > 0) & (hi - lo > np.float32(disparity_px)), np.float32(0.0), d)


def _filter3(a: np.ndarray, op) -> np.ndarray:
    """op (np.maximum or np.minimum) over each pixel's 3x3 neighbourhood, edges repeated
    (scipy.ndimage's maximum_filter(size=3, mode="nearest"), 2.5x faster here)."""
    p = np.pad(a, 1, mode="edge")
    rows = op(op(p[:, :-2], p[:, 1:-1]), p[:, 2:])
    return op(op(rows[:-2], rows[1:-1]), rows[2:])


def within_capsules(points_m: np.ndarray, capsules: Capsules, margin_m: float) -> np.ndarray:
    """bool [N]: points [N, 3] within margin_m of the surface of any capsule."""
    inside = np.zeros(len(points_m), bool)
    if len(capsules) == 0 or len(points_m) == 0:
        return inside
    # a bounding sphere first: most points are nowhere near
    ends = np.concatenate([capsules.a, capsules.b])
    centre = ends.mean(axis=0)
    reach = float(np.linalg.norm(ends - centre, axis=1).max() + capsules.radius.max() + margin_m)
    near = np.nonzero(np.linalg.norm(points_m - centre, axis=1) <= reach)[0]
    for a, b, r in zip(capsules.a, capsules.b, capsules.radius):
        if len(near) == 0:
            break
        hit = point_segment_distances(points_m[near], a, b) <= r + margin_m
        inside[near[hit]] = True
        near = near[~hit]
    return inside


def _block_sum(mask: np.ndarray, b: int) -> np.ndarray:
    return blocks(mask, b).sum(axis=(1, 3))


def _block_min(values: np.ndarray, b: int) -> np.ndarray:
    return blocks(values, b).min(axis=(1, 3))


def _neighbour_min(z: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The minimum over each block's 3x3 neighbourhood (inf outside), and the owner of the
    block that gives it."""
    h, w = z.shape
    pz = np.pad(z, 1, constant_values=np.inf)
    po = np.pad(owner, 1, constant_values=UNEXPLAINED)
    zs = np.stack([pz[i:i + h, j:j + w] for i in range(3) for j in range(3)])
    os_ = np.stack([po[i:i + h, j:j + w] for i in range(3) for j in range(3)])
    k = np.argmin(zs, axis=0)
    return np.take_along_axis(zs, k[None], 0)[0], np.take_along_axis(os_, k[None], 0)[0]


def depth_space_distance(depth_m: np.ndarray, K: np.ndarray, background: BackgroundDepth, robot: Capsules,
                         params: DepthSpaceParams,
                         surface: tuple[RobotSurface, np.ndarray] | None = None,
                         timings_ms: dict[str, float] | None = None,
                         people: list[tuple[int, Capsules]] | None = None,
                         label_image: bool = False) -> DepthSpaceResult:
    """The depth-space distance of one frame (module doc). depth_m [H, W] metres (0, NaN,
    inf, beyond max_depth_m: invalid); K [3, 3]; robot: the robot's capsules in the camera frame;
    surface: the robot's link
    surface and its points posed in the camera frame [M, 3]; timings_ms: given, each
    stage's time is added to it (edges, foreground, explain, blocks, rays; milliseconds);
    people: (id, capsules of the known joints) of fresh skeletons of this frame: foreground
    within ``person_margin_m`` of one person's capsules is that person's (DepthSpaceResult.
    people: its closest block, judged at that person's speed), within two people's nobody's.
    Rows and columns past the last whole block are not read (at most block_px - 1 of each).
    label_image: also return each pixel's label (LABEL_*: for debug images, not timed apart)."""
    lap = _Laps(timings_ms)
    d = np.asarray(depth_m, dtype=np.float32)
    if d.shape != background.shape:
        raise ValueError(f"depth {d.shape} and background {background.shape} differ in size")
    # a reading beyond max_depth_m is no camera's: invalid (read as far it would see through a body)
    d = np.where(np.isfinite(d) & (d > 0) & (d <= params.max_depth_m), d, np.float32(0.0))
    K = np.asarray(K, dtype=np.float64).reshape(3, 3)
    d = remove_depth_edges(d, K[0, 0], params.stereo_baseline_m, params.edge_disparity_px)
    b = params.block_px
    lap("edges")
    fg = background.foreground(d)
    rows, cols, points = mask_points_cam_m(fg, d, K)
    lap("foreground")
    explained = within_capsules(points, robot, params.explain_margin_m)
    if surface is not None and (~explained).any():
        model, surface_m = surface
        rest = np.nonzero(~explained)[0]
        margin = np.maximum(params.explain_margin_m, background.tolerance.at(points[rest, 2].astype(np.float32)))
        explained[rest[model.explains(points[rest], surface_m, margin)]] = True
    label = np.full(len(rows), UNEXPLAINED, np.int32)      # per foreground point: whose it is
    label[explained] = ROBOT
    for k, (_, caps) in enumerate(people or []):
        open_ = np.nonzero((label == UNEXPLAINED) | (label >= 0))[0]
        mine = open_[within_capsules(points[open_], caps, params.person_margin_m)]
        label[mine] = np.where(label[mine] == UNEXPLAINED, k, SHARED)
    label[label == SHARED] = UNEXPLAINED         # within two people's capsules: nobody's
    free = np.zeros_like(fg)
    keep = label != ROBOT
    free[rows[keep], cols[keep]] = True
    lap("explain")
    has_bg = background.depth_m > 0
    invalid = float(np.count_nonzero(d == 0) / d.size)
    reliable = background.reliable()
    lost = float(np.count_nonzero(reliable & (d == 0)) / np.count_nonzero(reliable)) if reliable.any() else invalid
    result = DepthSpaceResult(math.inf, explained_px=int(explained.sum()), foreground_px=len(rows),
                              invalid_fraction=invalid, lost_background_fraction=lost)
    if label_image:
        img = np.full(d.shape, LABEL_NONE, np.int8)
        img[d == 0] = LABEL_INVALID
        img[rows, cols] = np.where(label == ROBOT, LABEL_ROBOT, np.where(label >= 0, LABEL_PERSON, LABEL_UNEXPLAINED))
        result.label_image = img

    fill = _block_sum(free, b) / (b * b)
    z_near = _block_min(np.where(free, d, np.float32(np.inf)), b)
    occupied = fill >= params.min_block_fill
    z_near = np.where(occupied, z_near, np.inf)
    if people:
        owner = np.where(occupied, _block_owner(label, rows, cols, d.shape, b), UNEXPLAINED)
    else:
        owner = np.full(occupied.shape, UNEXPLAINED, np.int32)
    # holes beside occupied blocks take their depth and their owner (only where the background was seen)
    hole = _block_sum((d == 0) & has_bg, b) / (b * b) >= params.min_hole_fill
    hole &= ~occupied
    filled = np.zeros_like(occupied)
    for _ in range(params.hole_fill_blocks):
        grown_z, grown_owner = _neighbour_min(z_near, owner)
        new = hole & ~filled & np.isfinite(grown_z)
        if not new.any():
            break
        z_near = np.where(new, grown_z, z_near)
        owner = np.where(new, grown_owner, owner)
        filled |= new
    j, i = np.nonzero(np.isfinite(z_near))
    result.occupied_blocks, result.filled_holes = int(occupied.sum()), int(filled.sum())
    if params.unseen_space == "occupied":
        result.view_edge = _view_edge(robot, K, d.shape, params)
    lap("blocks")
    if len(j) == 0 or len(robot) == 0:
        lap("rays")
        return result

    bg_far = background.block_far_m(b)[j, i]          # the block's farthest background
    z0 = z_near[j, i].astype(np.float64)
    z1 = np.where(bg_far > z0, bg_far, np.maximum(params.max_depth_m, z0)).astype(np.float64)
    u = (i + 0.5) * b - 0.5
    v = (j + 0.5) * b - 0.5
    ray = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones(len(u))], axis=1)
    half_diag = 0.5 * b * math.hypot(1.0 / K[0, 0], 1.0 / K[1, 1])
    dist, link, end, p_ray, p_robot = _ray_distances(z0[:, None] * ray, z1[:, None] * ray, half_diag * z1, robot)
    who = owner[j, i]
    for group in np.unique(who):
        k = np.nonzero(who == group)[0]
        k = k[np.argmin(dist[k])]
        joint = robot.names_a[link[k]] if end[k] <= 0.5 else robot.names_b[link[k]]
        block = ClosestBlock(float(dist[k]), (float(u[k]), float(v[k])), joint, p_ray[k], p_robot[k])
        if group == UNEXPLAINED:
            result.distance_m, result.pixel_uv, result.robot_joint = block.distance_m, block.pixel_uv, joint
            result.point_m, result.point_robot_m = block.point_m, block.point_robot_m
        else:
            result.people[int(people[group][0])] = block
    lap("rays")
    return result


def _view_edge(robot: Capsules, K: np.ndarray, shape: tuple[int, int], params: DepthSpaceParams):
    """The outside of the view as a ClosestBlock (None without robot capsules)."""
    planes = frustum_planes(K, shape[1], shape[0], params.min_depth_m, params.max_depth_m)
    dist, k, end, foot = view_edge_distance(robot, planes)
    if k < 0:
        return None
    joint = (robot.names_a + robot.names_b)[k]
    z = max(float(foot[2]), 1e-6)
    u = float(np.clip(K[0, 0] * foot[0] / z + K[0, 2], 0, shape[1] - 1)) if np.isfinite(foot).all() else 0.0
    v = float(np.clip(K[1, 1] * foot[1] / z + K[1, 2], 0, shape[0] - 1)) if np.isfinite(foot).all() else 0.0
    return ClosestBlock(dist, (u, v), joint, foot, end)


# label_image values: background (or nothing), no reading, the robot's, a fresh skeleton's, possibly a person
LABEL_NONE, LABEL_INVALID, LABEL_ROBOT, LABEL_PERSON, LABEL_UNEXPLAINED = 0, 1, 2, 3, 4

UNEXPLAINED, ROBOT, SHARED = -1, -2, -3     # point labels; a person's points carry the person's index (0, 1, ...)


def _block_owner(label: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], b: int) -> np.ndarray:
    """Per block: the person index whose points are all its foreground points (not the
    robot's), else UNEXPLAINED (an unexplained point, or two people's)."""
    big = np.iinfo(np.int32).max
    lo = np.full(shape, big, np.int32)
    hi = np.full(shape, -1, np.int32)
    person = label >= 0
    lo[rows[person], cols[person]] = label[person]
    hi[rows[person], cols[person]] = label[person]
    unexplained = np.zeros(shape, bool)
    unexplained[rows[label == UNEXPLAINED], cols[label == UNEXPLAINED]] = True
    lo_b, hi_b = _block_min(lo, b), -_block_min(-hi, b)
    clean = (_block_sum(unexplained, b) == 0) & (lo_b == hi_b)
    return np.where(clean, lo_b, UNEXPLAINED).astype(np.int32)


def _ray_distances(a: np.ndarray, b: np.ndarray, radius: np.ndarray, robot: Capsules):
    """Per ray capsule (a [N, 3], b [N, 3], radius [N]): surface distance to the nearest
    robot capsule [N], that capsule's index [N], the parameter along it [N], the closest
    points on the ray's and the robot's axes [N, 3]; in chunks (memory bound)."""
    out = [[], [], [], [], []]
    for s in range(0, len(a), 4096):
        surface, _, t, cp, cq = pairwise_closest(a[s:s + 4096], b[s:s + 4096], radius[s:s + 4096], robot)
        k = np.argmin(surface, axis=1)
        n = np.arange(len(k))
        for acc, val in zip(out, (surface[n, k], k, t[n, k], cp[n, k], cq[n, k])):
            acc.append(val)
    return tuple(np.concatenate(v) for v in out)


class _Laps:
    """Adds the time since the last lap (ms) to timings[name]; nothing when timings is None."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings, self.t = timings, time.perf_counter()

    def __call__(self, name: str) -> None:
        if self.timings is not None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + (now - self.t) * 1e3
            self.t = now
