"""The segmentation node: Mask R-CNN instances (class, score, box, mask, appearance) of every colour image.

Subscribes (relative names; launch puts them under a namespace, default ``/cell``):

| topic                      | type                                      | QoS                           |
|----------------------------|-------------------------------------------|-------------------------------|
| ``camera/color/image_raw`` | sensor_msgs/Image rgb8 (bgr8, mono8 read) | input QoS, depth 1 by default |

Publishes, once per colour image, with the image's header (same stamp, same frame):

| topic                        | type                         | notes                                 |
|------------------------------|------------------------------|---------------------------------------|
| ``segmentation/instances``   | hrc_perception/InstanceArray | see below; reliable, depth 10         |
| ``segmentation/debug_image`` | sensor_msgs/Image rgb8       | masks, boxes, "class score" labels    |

The debug image is published only with ``publish_debug_image``.

Each ``Instance``: ``id`` 1..N in the array (by decreasing score), ``class_name``,
``class_id`` = the model's 1-based label, ``score`` 0..1, ``roi`` = the tight
bounding box of the mask (pixels of the input image; x_offset, y_offset = top-left
column, row), ``mask`` = mono8 crop of the mask to the roi (255 inside) made by
:func:`hrc_perception.ros.convert.mask_to_roi_image`, ``embedding`` = the
L2-normalised 128-d appearance descriptor (pooled RoIAlign features, Deep SORT's
appearance input). A detection whose mask is empty (no pixel above 0.5) keeps its
detection box (rounded to whole pixels, clipped to the image) as roi and an empty
(0x0) mask image.

With ``blazepose_people`` (for real cameras), BlazePose's people (real-trained, the models
inside mediapipe's wheel; the whole image and tiles of ``blazepose_tile_scale``) are added
as ``person`` instances where the model has no person (box IoU <= 0.5), each with its person
mask, its score and the model's appearance descriptor of its box: the synthetic-trained
model finds about a third of the people in real images. A person is only ever added.

No markers: instances are 2D (pixels) and this node has no depth, so there is
nothing to place in 3D; the visualizer draws the masks.

Weights (``weights``): a :func:`hrc_perception.segmentation.model.save_checkpoint`
file; '' means the shipped ``models/segmentation/model.pt`` (source tree, else the
installed ``share/hrc_perception/models``). The classes come from the checkpoint;
a ``model_card.json`` beside the weights must name the same classes.

Lifecycle: configure loads the predictor (a missing or mismatched weights file, or
``device:=cuda`` without CUDA, fails the transition with one log line naming the
reason, kept in ``configure_error``; the node stays up). Deactivate frees it and
activate loads it again: with the shipped model (26 MiB of parameters) deactivate +
activate took 1.3 s on the 2-core CPU machine it was measured on (configure 5.3 s, torch's
imports included), quick enough to give its memory back while inactive; cleanup frees it
too. Images are only processed while active.

Falling behind: inference runs in the subscription callback, so while one image is
being segmented new ones wait in the subscription's queue of ``input_queue_depth``
images (keep-last); with the default depth 1 the next image processed is always the
newest one.

Bad input never stops the node: an image with an unreadable encoding or size, an
empty image, or a predictor error is counted with ``report()`` (kinds
``bad_image``, ``empty_image``, ``predict_error``) and answered with an empty
InstanceArray carrying the image's header, so downstream nodes still see the frame.
"""
from __future__ import annotations

import array
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image as PilImage
from PIL import ImageDraw
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Header

from hrc_perception.engines import ENGINES
from hrc_perception.msg import Instance, InstanceArray
from hrc_perception.ros.convert import copy_header, image_to_rgb, mask_to_roi_image, numpy_to_image
from hrc_perception.ros.node_base import HrcNode, ParamSpec, run_node
from hrc_perception.ros.weights import resolve_weights
from hrc_perception.viz.draw import draw_boxes, draw_masks, id_color

COLOR_TOPIC = "camera/color/image_raw"
INSTANCES_TOPIC = "segmentation/instances"
DEBUG_IMAGE_TOPIC = "segmentation/debug_image"

WEIGHTS_RELPATH = Path("models") / "segmentation" / "model.pt"
NO_WEIGHTS_MESSAGE = "no segmentation weights: train with `hrc-perception train segmentation` or set weights"
MIN_SHORT_SIDE = 32   # the predictor's smallest input_short_side (pixels)


def check_model_card(weights_path: Path, class_names: list[str]) -> None:
    """ValueError when a ``model_card.json`` beside the weights names other classes than the weights."""
    card_path = weights_path.with_name("model_card.json")
    if not card_path.is_file():
        return
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{card_path}: unreadable model card: {e}") from None
    names = card.get("class_names", card.get("classes")) if isinstance(card, dict) else None
    if names is not None and list(names) != list(class_names):
        raise ValueError(f"{weights_path}: the weights were trained for classes {list(class_names)}, but "
                         f"{card_path.name} says {list(names)}: mismatched weights file")


def _box_roi(box_xyxy: np.ndarray, height: int, width: int) -> RegionOfInterest:
    """ROI of an xyxy box (pixel edges), rounded outwards to whole pixels and clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    if not all(np.isfinite((x0, y0, x1, y1))):
        return RegionOfInterest()
    c0, r0 = min(max(int(np.floor(x0)), 0), width), min(max(int(np.floor(y0)), 0), height)
    c1, r1 = min(max(int(np.ceil(x1)), c0), width), min(max(int(np.ceil(y1)), r0), height)
    return RegionOfInterest(x_offset=c0, y_offset=r0, width=c1 - c0, height=r1 - r0, do_rectify=False)


def detections_to_msg(det, header: Header) -> InstanceArray:
    """InstanceArray of a predictor's Detections (see the module doc) with a copy of ``header``."""
    out = InstanceArray(header=copy_header(header))
    h, w = det.masks.shape[1:] if det.masks.ndim == 3 else (0, 0)
    for i in range(len(det)):
        roi, mask = mask_to_roi_image(det.masks[i], copy_header(header))
        if roi.width == 0 or roi.height == 0:   # no mask pixel: keep the box, no mask
            roi = _box_roi(det.boxes_xyxy[i], h, w)
        emb = np.ascontiguousarray(det.embeddings[i], np.float32) if len(det.embeddings) > i \
            else np.zeros(0, np.float32)
        out.instances.append(Instance(id=i + 1, class_name=str(det.class_names[i]), class_id=int(det.labels[i]),
                                      score=float(det.scores[i]), roi=roi, mask=mask,
                                      embedding=array.array("f", emb.tobytes())))
    return out


def draw_detections(rgb: np.ndarray, det) -> np.ndarray:
    """[H, W, 3] uint8 debug overlay: masks blended in (colour per instance id 1..N; the
    higher score on top), boxes labelled "class score"."""
    n = len(det)
    ids = np.zeros(rgb.shape[:2], np.uint16)
    for i in reversed(range(n)):
        ids[det.masks[i]] = i + 1
    colors = np.array([(0, 0, 0)] + [id_color(i + 1) for i in range(n)], np.uint8)
    out = draw_masks(rgb, ids, colors)
    pil = PilImage.fromarray(out)
    boxes = np.asarray(det.boxes_xyxy, np.float64).reshape(-1, 4).copy()
    boxes[:, 2:] -= boxes[:, :2]   # xyxy -> xywh
    draw_boxes(ImageDraw.Draw(pil), boxes, labels=[f"{c} {s:.2f}" for c, s in zip(det.class_names, det.scores)],
               colors=[id_color(i + 1) for i in range(n)])
    return np.asarray(pil)


class SegmentationNode(HrcNode):
    """Mask R-CNN instance segmentation of the colour stream (see the module doc); node name default
    'segmentation'.

    After construction: ``predictor`` is the loaded SegmentationPredictor (None unless
    configured; None again after a deactivate), ``weights_path`` the file it came from,
    ``configure_error`` the last load failure's message (configure, or the reload on
    activate; None after a good one), ``frames_processed`` InstanceArrays published (empty
    ones included), ``last_inference_s`` seconds of the last prediction.
    """

    MODEL_ATTR = "predictor"
    PARAMS = (
        ParamSpec("weights", "", "segmentation checkpoint (hrc-perception train segmentation); '' = the shipped "
                  "models/segmentation/model.pt", read_only=True),
        ParamSpec("score_threshold", 0.5, "publish detections with a score above this (0..1)",
                  min_value=0.0, max_value=1.0),
        ParamSpec("max_instances", 50, "at most this many instances per image (highest scores)",
                  min_value=1, max_value=200),
        ParamSpec("input_short_side", 0, "short side (pixels) images are resized to for the network; 0 = the "
                  f"checkpoint's; otherwise >= {MIN_SHORT_SIDE}", min_value=0, max_value=4096),
        ParamSpec("rpn_proposals", 0, "region proposals kept after the RPN's NMS; 0 = the model's (150). More find "
                  "more parts in clutter (real LM-O frames: 150 -> 300 raised mask AP50) at the heads' cost",
                  min_value=0, max_value=2000),
        ParamSpec("device", "cpu", "torch device of the model", choices=("cpu", "cuda"), read_only=True),
        ParamSpec("engine", "torch", "what runs the trunk and feature pyramid: torch (the reference and, here, the "
                  "fastest), onnxruntime or openvino (fp32, CPU only; the same detections: hrc-perception bench "
                  "engines)", choices=ENGINES,
                  read_only=True),
        ParamSpec("blazepose_people", False, "also BlazePose's people (real-trained; mediapipe's models) where the "
                  "model has no person: for real cameras (hrc_perception.segmentation.people)", read_only=True),
        ParamSpec("blazepose_tile_scale", 0.6, "blazepose_people: tiles of this fraction of the image's shorter side "
                  "besides the whole image, for small people (0 = the whole image only)", min_value=0.0,
                  max_value=1.0, read_only=True),
        ParamSpec("publish_debug_image", True, "also publish segmentation/debug_image (masks and boxes drawn)"),
        # replaces the common default (5): inference is slower than the camera, only the newest image matters
        ParamSpec("input_queue_depth", 1, "queue depth of the colour subscription (1: always segment the newest "
                  "image)", min_value=1, max_value=100, read_only=True),
    )

    def __init__(self, node_name: str = "segmentation", **kwargs):
        self.predictor = None
        self.weights_path: Path | None = None
        self.configure_error: str | None = None
        self.frames_processed = 0
        self.last_inference_s = float("nan")
        self._sub = None
        self._instances_pub = None
        self._debug_pub = None
        self._options_changed = False
        self._blazepose = None
        super().__init__(node_name, **kwargs)
        self.add_post_set_parameters_callback(self._on_parameters_set)

    # -- lifecycle ------------------------------------------------------------------
    def on_configure_hook(self) -> None:
        self.load_model_or_fail()
        self._instances_pub = self.create_publisher(InstanceArray, INSTANCES_TOPIC, self.output_qos())
        self._debug_pub = self.create_publisher(Image, DEBUG_IMAGE_TOPIC, self.output_qos())
        self._sub = self.create_subscription(Image, COLOR_TOPIC, self._on_image, self.input_qos())
        self.frames_processed = 0
        p = self.predictor
        self.get_logger().info(f"weights {self.weights_path}: classes {', '.join(p.class_names)}; short side "
                               f"{p.input_short_side} px on {p.device}")

    def load_model(self) -> None:
        from hrc_perception.segmentation.predictor import SegmentationPredictor
        short_side = self.param("input_short_side")
        if 0 < short_side < MIN_SHORT_SIDE:
            raise ValueError(f"input_short_side must be 0 (the checkpoint's) or >= {MIN_SHORT_SIDE} px, "
                             f"got {short_side}")
        path = resolve_weights(self.param("weights"), WEIGHTS_RELPATH, NO_WEIGHTS_MESSAGE)
        predictor = SegmentationPredictor(path, device=self.param("device"),
                                          score_threshold=self.param("score_threshold"),
                                          max_instances=self.param("max_instances"),
                                          input_short_side=short_side or None, engine=self.param("engine"),
                                          rpn_proposals=self.param("rpn_proposals") or None)
        check_model_card(path, predictor.class_names)
        self._blazepose = None
        if self.param("blazepose_people"):
            if "person" not in predictor.class_names:
                raise ValueError(f"blazepose_people: the model has no person class ({predictor.class_names})")
            from hrc_perception.human_pose.blazepose import BlazePose
            scale = self.param("blazepose_tile_scale")
            self._blazepose = BlazePose(tile_scales=(scale,) if scale > 0 else ())
        self.predictor, self.weights_path = predictor, path
        self._options_changed = False

    def on_cleanup_hook(self) -> None:
        if self._sub is not None:
            self.destroy_subscription(self._sub)
        for pub in (self._instances_pub, self._debug_pub):
            if pub is not None:
                self.destroy_publisher(pub)
        self._sub = self._instances_pub = self._debug_pub = None   # the base frees the model

    # -- parameters -----------------------------------------------------------------
    def _on_parameters_set(self, params) -> None:
        if {p.name for p in params} & {"score_threshold", "max_instances", "input_short_side", "rpn_proposals"}:
            self._options_changed = True   # applied before the next image (same thread as inference)

    def _apply_options(self) -> None:
        """Put the current score_threshold / max_instances / input_short_side / rpn_proposals into the
        loaded predictor
        (the same settings ``SegmentationPredictor.__init__`` makes)."""
        self._options_changed = False
        p = self.predictor
        short_side = self.param("input_short_side") or p.model.hrc_config["input_short_side"]
        if short_side < MIN_SHORT_SIDE:
            self.report("bad_parameter", f"input_short_side {short_side} < {MIN_SHORT_SIDE} px: kept "
                        f"{p.input_short_side}")
            short_side = p.input_short_side
        p.set_options(self.param("score_threshold"), self.param("max_instances"), int(short_side),
                      self.param("rpn_proposals") or p.default_rpn_proposals)

    # -- images -----------------------------------------------------------------------
    def _on_image(self, msg: Image) -> None:
        with self.model_lock:      # a deactivate frees the model, not while it runs
            if not self.is_active or self.predictor is None:
                return
            if self._options_changed:
                self._apply_options()
            self.segment_and_publish(msg)

    def _with_blazepose_people(self, det, rgb: np.ndarray):
        """det with BlazePose's people added where it has no person (det unchanged, reported, when it fails)."""
        from hrc_perception.segmentation.people import add_people
        try:
            label = self.predictor.class_names.index("person") + 1
            return add_people(det, self._blazepose.people(rgb), label,
                              lambda boxes: self.predictor.embed_boxes(rgb, boxes))
        except Exception as e:  # noqa: BLE001 - the model's own detections still go out
            self.report("blazepose_error", f"{type(e).__name__}: {e}")
            return det

    def segment_and_publish(self, msg: Image) -> InstanceArray:
        """Segment one colour image and publish the results; returns the InstanceArray published
        (empty, with the image's header, when the image cannot be segmented)."""
        det, rgb = None, None
        rgb = self.converted(image_to_rgb, msg, "bad_image", COLOR_TOPIC)
        if rgb is not None and (rgb.shape[0] == 0 or rgb.shape[1] == 0):
            self.report("empty_image", f"{COLOR_TOPIC}: image is {msg.width}x{msg.height}")
            rgb = None
        if rgb is not None:
            t0 = time.perf_counter()
            try:
                det = self.predictor.predict(rgb)
            except Exception as e:  # noqa: BLE001 - a failed prediction must not stop the node
                self.report("predict_error", f"{type(e).__name__}: {e}")
            if det is not None and self._blazepose is not None:
                det = self._with_blazepose_people(det, rgb)
            self.last_inference_s = time.perf_counter() - t0
        out = InstanceArray(header=copy_header(msg.header))
        if det is not None:
            try:
                out = detections_to_msg(det, msg.header)
            except Exception as e:  # noqa: BLE001
                self.report("predict_error", f"converting {len(det)} detections: {type(e).__name__}: {e}")
        self._instances_pub.publish(out)
        self.frames_processed += 1
        if det is not None and self.param("publish_debug_image"):
            try:
                self._debug_pub.publish(numpy_to_image(draw_detections(rgb, det), "rgb8", copy_header(msg.header)))
            except Exception as e:  # noqa: BLE001 - drawing is extra
                self.report("draw_error", f"{type(e).__name__}: {e}")
        return out


def main(args: list[str] | None = None) -> int:
    """``ros2 run hrc_perception segmentation [--ros-args -p weights:=models/segmentation/model.pt ...]``.

    Exit status: 0 after Ctrl-C, 2 for an invalid parameter."""
    return run_node(SegmentationNode, args)
