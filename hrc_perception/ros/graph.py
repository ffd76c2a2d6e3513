"""The node graphs of the cell (``config/graphs.yaml``), shared by launch files and bringup.

Pure Python (no rclpy, no launch): ``load_graph(name)`` reads one graph and
checks that every executable is known and every parameter file exists (and that
remappings map names to names, and that ``nice``, a node process's niceness, is 0-19 and
never set on a safety node);
``node_parameters(node)`` gives the parameter values a node starts with (its
parameter file's ``ros__parameters``, then the graph's overrides).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hrc_perception import resources

# the nodes the safety verdict depends on: never lowered in priority (a graph's ``nice``, ``--nice-others``)
SAFETY_EXECUTABLES = ("safety_monitor", "safety_watchdog")

# executable name -> (module, node class). One entry per file in nodes/.
EXECUTABLES: dict[str, tuple[str, str]] = {
    "rgbd_capture": ("hrc_perception.ros.rgbd_capture", "RgbdCaptureNode"),
    "visualizer": ("hrc_perception.ros.visualizer", "VisualizerNode"),
    "segmentation": ("hrc_perception.ros.segmentation_node", "SegmentationNode"),
    "tracker": ("hrc_perception.ros.tracker_node", "TrackerNode"),
    "object_pose": ("hrc_perception.ros.object_pose_node", "ObjectPoseNode"),
    "robot_pose": ("hrc_perception.ros.robot_pose_node", "RobotPoseNode"),
    "human_pose": ("hrc_perception.ros.human_pose_node", "HumanPoseNode"),
    "safety_monitor": ("hrc_perception.ros.safety_monitor_node", "SafetyMonitorNode"),
    "safety_watchdog": ("hrc_perception.ros.safety_watchdog_node", "SafetyWatchdogNode"),
}


class GraphError(ValueError):
    """A graph description that cannot be run; the message names file and entry."""


@dataclass(frozen=True)
class GraphNode:
    executable: str
    name: str
    parameters_file: Path
    overrides: dict = field(default_factory=dict)
    remappings: dict = field(default_factory=dict)   # topic (relative) -> topic it reads / writes instead
    nice: int = 0        # the process's niceness (0-19): a node that may run at whatever rate is left


@dataclass(frozen=True)
class Graph:
    name: str
    namespace: str
    nodes: tuple[GraphNode, ...]


def config_dir() -> Path:
    """config/ of the source tree, of a ROS install or of a pip install (``resources``)."""
    try:
        return resources.config_dir()
    except resources.ResourceError as e:
        raise GraphError(str(e)) from None


def load_graph(name: str, path: Path | None = None) -> Graph:
    """Graph `name` of graphs.yaml (default: the package's config/graphs.yaml)."""
    path = Path(path) if path else config_dir() / "graphs.yaml"
    try:
        graphs = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GraphError(f"{path}: cannot read: {e}") from None
    if name not in graphs:
        raise GraphError(f"{path}: no graph {name!r} (graphs: {', '.join(graphs)})")
    g = graphs[name]
    nodes = []
    for k, entry in enumerate(g.get("nodes", [])):
        where = f"{path}: {name}.nodes[{k}]"
        exe = entry.get("executable")
        if exe not in EXECUTABLES:
            raise GraphError(f"{where}: unknown executable {exe!r} (known: {', '.join(EXECUTABLES)})")
        params = path.parent / entry.get("parameters", f"{exe}.yaml")
        if not params.is_file():
            raise GraphError(f"{where}: parameter file not found: {params}")
        remaps = dict(entry.get("remappings") or {})
        bad = [f"{a}: {b}" for a, b in remaps.items() if not (isinstance(a, str) and isinstance(b, str) and a and b)]
        if bad:
            raise GraphError(f"{where}: remappings must map topic names to topic names, got {', '.join(bad)}")
        nice = entry.get("nice", 0)
        if not (isinstance(nice, int) and not isinstance(nice, bool) and 0 <= nice <= 19):
            raise GraphError(f"{where}: nice must be an integer 0..19, got {nice!r}")
        if nice and exe in SAFETY_EXECUTABLES:
            raise GraphError(f"{where}: {exe} is never lowered in priority (nice {nice})")
        nodes.append(GraphNode(exe, entry.get("name", exe), params, dict(entry.get("overrides") or {}), remaps,
                               nice))
    return Graph(name, g.get("namespace", "/cell"), tuple(nodes))


def node_parameters(node: GraphNode) -> dict:
    """Start-up parameter values of a graph node: file, then overrides."""
    data = yaml.safe_load(node.parameters_file.read_text()) or {}
    section = data.get(node.name) or data.get(node.executable) or data.get("/**") or {}
    params = dict(section.get("ros__parameters", {}))
    params.update(node.overrides)
    return params
