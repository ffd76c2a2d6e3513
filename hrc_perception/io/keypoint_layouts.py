"""Person keypoint layouts of public datasets and their mapping to COCO-17.

A layout is the order of the joints in a COCO-format file's ``keypoints`` (x, y, v per
joint, pixels; v = 0 not labelled, 1 occluded, 2 visible). The tables give each known
layout's joint names (orders as the datasets define them, checked against mmpose's
dataset configs); a joint maps to the COCO-17 joint of the same name. COCO joints a layout
lacks (the face joints of CrowdPose, MPII and AI Challenger) get v = 0, so OKS and PCK do
not score them; the layout's own extra joints (head top, neck, pelvis, feet, ...) are
dropped.

Which layout a file uses: ``--keypoint-layout`` when given; else the joint names of the
file's categories (``categories[..]['keypoints']``) when present; else the joint count,
when only one layout has it (CrowdPose and AI Challenger both have 14 joints).
"""
from __future__ import annotations

import copy

import numpy as np

from hrc_perception.skeletons import COCO17_BONES, COCO17_NAMES

_HALPE26_NAMES = COCO17_NAMES + ("head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
                                 "right_small_toe", "left_heel", "right_heel")

LAYOUTS: dict[str, tuple[str, ...]] = {
    "coco": COCO17_NAMES,
    "crowdpose": ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                  "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck"),
    "mpii": ("right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
             "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder",
             "left_elbow", "left_wrist"),
    "aic": ("right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
            "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "head_top", "neck"),
    "halpe26": _HALPE26_NAMES,
    # Halpe full body: the 26 body joints, 68 face, 21 per hand (left, then right)
    "halpe136": _HALPE26_NAMES + tuple(f"face_{k}" for k in range(68))
    + tuple(f"{side}_hand_{k}" for side in ("left", "right") for k in range(21)),
}
"""Joint names of each known layout, in the order of the file's keypoints."""


def normalize_joint_name(name: str) -> str:
    """A joint name in the tables' spelling: lower case, words joined by ``_``, a leading
    ``l``/``r`` word spelled out (MPII's "r ankle" -> "right_ankle")."""
    words = str(name).strip().lower().replace("-", " ").replace("_", " ").split()
    if words and words[0] in ("l", "r"):
        words[0] = {"l": "left", "r": "right"}[words[0]]
    return "_".join(words)


def coco17_sources(layout: str) -> np.ndarray:
    """[17] int: for each COCO-17 joint (COCO17_NAMES order), its index in ``layout``, or
    -1 where the layout lacks it."""
    names = LAYOUTS[layout]
    return np.array([names.index(n) if n in names else -1 for n in COCO17_NAMES], np.int64)


def _names_match(layout: str, names: list[str]) -> bool:
    """True when ``names`` (a file's) has the layout's count and the layout's COCO joints at
    the same indices (the joints that are scored; extra joints may be spelled otherwise)."""
    if len(names) != len(LAYOUTS[layout]):
        return False
    got = [normalize_joint_name(n) for n in names]
    return all(got[i] == COCO17_NAMES[c] for c, i in enumerate(coco17_sources(layout)) if i >= 0)


def resolve_layout(num_joints: int, names: list[str] | None = None, layout: str | None = None,
                   source: str = "keypoints") -> str:
    """The layout of ``num_joints`` joints per person: ``layout`` when given (its count must
    match), else the one whose COCO joints ``names`` (the file's category keypoint names)
    match, else the only layout with that count. ValueError (naming ``source``, the count
    and the candidates) when none fits or the count alone is ambiguous."""
    known = ", ".join(f"{k} ({len(v)})" for k, v in LAYOUTS.items())
    if layout is not None:
        if layout not in LAYOUTS:
            raise ValueError(f"--keypoint-layout {layout}: unknown; known layouts (joints): {known}")
        if len(LAYOUTS[layout]) != num_joints:
            raise ValueError(f"{source}: {num_joints} joints per person, but --keypoint-layout {layout} has "
                             f"{len(LAYOUTS[layout])}")
        return layout
    candidates = [k for k, v in LAYOUTS.items() if len(v) == num_joints]
    if not candidates:
        raise ValueError(f"{source}: {num_joints} joints per person is no known keypoint layout; "
                         f"known layouts (joints): {known}")
    if names:
        matching = [k for k in candidates if _names_match(k, names)]
        if len(matching) == 1:
            return matching[0]
        raise ValueError(f"{source}: the joint names {list(names)} match no known layout of {num_joints} joints "
                         f"({', '.join(candidates)}); choose one with --keypoint-layout")
    if len(candidates) > 1:
        raise ValueError(f"{source}: {num_joints} joints per person and no joint names in its categories: "
                         f"ambiguous between {' and '.join(candidates)}; choose with --keypoint-layout "
                         f"{'|'.join(candidates)}")
    return candidates[0]


def to_coco17(keypoints: np.ndarray, layout: str) -> np.ndarray:
    """Keypoints [..., K * 3] or [..., K, 3] (x, y, v) of ``layout`` as COCO-17 [..., 17, 3];
    the COCO joints the layout lacks are (0, 0, 0), i.e. not labelled."""
    k = len(LAYOUTS[layout])
    kp = np.asarray(keypoints, np.float64)
    kp = kp.reshape(kp.shape[:-1] + (k, 3)) if kp.shape[-1] == 3 * k else kp
    if kp.shape[-2:] != (k, 3):
        raise ValueError(f"keypoints of shape {kp.shape} are not {k} joints (x, y, v) of layout {layout}")
    src = coco17_sources(layout)
    out = np.zeros(kp.shape[:-2] + (17, 3))
    out[..., src >= 0, :] = kp[..., src[src >= 0], :]
    return out


def coco_dataset_to_coco17(dataset: dict, layout: str | None = None, source: str = "annotations"
                           ) -> tuple[dict, str]:
    """A COCO person-keypoints dataset (the json's dict) with every annotation's keypoints
    in COCO-17 (``num_keypoints`` recounted; ``area`` = box w * h where the file has none,
    as in CrowdPose), and the layout it was in (see :func:`resolve_layout`; ``source``
    names the file in errors). The input is not changed."""
    anns = [a for a in dataset.get("annotations", []) if a.get("keypoints")]
    counts = sorted({len(a["keypoints"]) for a in anns})
    if any(c % 3 for c in counts) or len(counts) > 1:
        raise ValueError(f"{source}: keypoints lists of {counts} values: expected one number of joints x 3")
    cat_ids = {a["category_id"] for a in anns}
    names = next((c["keypoints"] for c in dataset.get("categories", []) if c["id"] in cat_ids and c.get("keypoints")),
                 None)
    layout = resolve_layout(counts[0] // 3 if counts else 17, names, layout, source)
    out = copy.deepcopy(dataset)
    for a in out.get("annotations", []):
        if a.get("keypoints"):
            kp = to_coco17(a["keypoints"], layout)
            a["keypoints"] = kp.reshape(-1).tolist()
            a["num_keypoints"] = int((kp[:, 2] > 0).sum())
        if "area" not in a and "bbox" in a:
            a["area"] = float(a["bbox"][2] * a["bbox"][3])
    for c in out.get("categories", []):
        if c["id"] in cat_ids:
            c["keypoints"] = list(COCO17_NAMES)
            c["skeleton"] = [[i + 1, j + 1] for i, j in COCO17_BONES]
    return out, layout
