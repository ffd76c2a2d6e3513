"""Classical baseline for part poses: open3d point-to-plane ICP of the part model to the
instance's masked point cloud, started from the cloud's centroid or from a global
registration (FPFH features + RANSAC).

Clouds in metres, camera optical frame; poses T_cam_obj [4, 4].
"""
from __future__ import annotations

import numpy as np


def _cloud(points_m: np.ndarray, normals_radius_m: float | None = None):
    import open3d as o3d
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points_m, np.float64)))
    if normals_radius_m is not None:
        pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=normals_radius_m, max_nn=30))
    return pc


def icp_point_to_plane(model_pts_m: np.ndarray, scene_pts_m: np.ndarray, T_init: np.ndarray, diameter_m: float,
                       iterations: int = 30) -> np.ndarray:
    """Refine T_init (model to camera) so the model points [M, 3] fit the scene cloud
    [P, 3] (point-to-plane; scene normals from neighbours within diameter/10;
    correspondences up to diameter/5)."""
    import open3d as o3d
    reg = o3d.pipelines.registration
    result = reg.registration_icp(
        _cloud(model_pts_m), _cloud(scene_pts_m, diameter_m / 10.0), diameter_m / 5.0, np.asarray(T_init, np.float64),
        reg.TransformationEstimationPointToPlane(), reg.ICPConvergenceCriteria(max_iteration=iterations))
    return np.asarray(result.transformation)


def centroid_init(scene_pts_m: np.ndarray) -> np.ndarray:
    """Model frame at the cloud's centroid, axes of the camera."""
    T = np.eye(4)
    T[:3, 3] = np.asarray(scene_pts_m).mean(axis=0)
    return T


def global_registration(model_pts_m: np.ndarray, scene_pts_m: np.ndarray, diameter_m: float, seed: int = 0
                        ) -> np.ndarray:
    """Coarse T_cam_obj from FPFH feature matches and RANSAC (voxel diameter/15,
    features over diameter/3, inliers within diameter/10)."""
    import open3d as o3d
    reg = o3d.pipelines.registration
    o3d.utility.random.seed(seed)
    voxel = diameter_m / 15.0

    def prepared(points):
        pc = _cloud(points).voxel_down_sample(voxel)
        pc.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=2 * voxel, max_nn=30))
        feat = reg.compute_fpfh_feature(pc, o3d.geometry.KDTreeSearchParamHybrid(radius=diameter_m / 3.0, max_nn=100))
        return pc, feat

    src, src_f = prepared(model_pts_m)
    dst, dst_f = prepared(scene_pts_m)
    result = reg.registration_ransac_based_on_feature_matching(
        src, dst, src_f, dst_f, True, diameter_m / 10.0, reg.TransformationEstimationPointToPoint(False), 3,
        [reg.CorrespondenceCheckerBasedOnEdgeLength(0.9), reg.CorrespondenceCheckerBasedOnDistance(diameter_m / 10.0)],
        reg.RANSACConvergenceCriteria(20000, 0.999))
    return np.asarray(result.transformation)
