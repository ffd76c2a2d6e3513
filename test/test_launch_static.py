"""Launch files, graphs, parameter files and the rviz config: everything they name exists."""
import ast
import sys
from pathlib import Path

import pytest
import yaml

from hrc_perception.ros.graph import EXECUTABLES, GraphError, load_graph, node_parameters
from hrc_perception.ros.launch_description import COMMON_ARGUMENTS, NodeLaunch, ProcessLaunch, plan

REPO = Path(__file__).resolve().parents[1]
GRAPHS = yaml.safe_load((REPO / "config" / "graphs.yaml").read_text())


def _node_class(executable):
    pytest.importorskip("rclpy")
    from hrc_perception.ros.bringup import node_class
    return node_class(executable)


@pytest.mark.parametrize("launch_file", sorted((REPO / "launch").glob("*.launch.py")))
def test_launch_file_uses_an_existing_graph(launch_file):
    tree = ast.parse(launch_file.read_text())
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "generate_launch_description" in names
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "generate"]
    assert len(calls) == 1
    graph = calls[0].args[0].value
    assert graph == launch_file.name.removesuffix(".launch.py") and graph in GRAPHS
    if len(calls[0].args) > 1:   # extra launch arguments set parameters of nodes in the graph
        extra = ast.literal_eval(calls[0].args[1])
        nodes = {gn.name: gn for gn in load_graph(graph).nodes}
        for _, (_, _, target) in extra.items():
            node, param = target.split(".")
            assert node in nodes
            assert param in {s.name for s in _node_class(nodes[node].executable).PARAMS}


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_graph_nodes_exist_with_their_parameters(graph):
    from hrc_perception.ros.node_base import COMMON_PARAMS
    g = load_graph(graph)
    assert g.nodes and g.namespace.startswith("/")
    for gn in g.nodes:
        assert (REPO / "nodes" / gn.executable).is_file(), f"nodes/{gn.executable} missing"
        cls = _node_class(gn.executable)
        known = {s.name: s for s in COMMON_PARAMS + tuple(cls.PARAMS)}
        for name, value in node_parameters(gn).items():
            assert name in known, f"{graph}: {gn.name} has no parameter {name!r}"
            v = float(value) if isinstance(known[name].default, float) and isinstance(value, int) else value
            assert known[name].check(v) is None, f"{graph}: {gn.name}.{name}={value!r}: {known[name].check(v)}"


def test_every_executable_has_a_node_script():
    for exe in EXECUTABLES:
        script = REPO / "nodes" / exe
        assert script.is_file() and script.stat().st_mode & 0o111, f"nodes/{exe} missing or not executable"
        assert "main" in script.read_text()


def test_unknown_executable_and_missing_parameter_file(tmp_path):
    bad = tmp_path / "graphs.yaml"
    bad.write_text("g:\n  nodes:\n    - executable: teleporter\n")
    with pytest.raises(GraphError, match="unknown executable 'teleporter'"):
        load_graph("g", bad)
    bad.write_text("g:\n  nodes:\n    - executable: rgbd_capture\n      parameters: nope.yaml\n")
    with pytest.raises(GraphError, match="parameter file not found: .*nope.yaml"):
        load_graph("g", bad)
    with pytest.raises(GraphError, match="no graph 'h'"):
        load_graph("h", bad)
    for exe, line, error in (("rgbd_capture", "remappings: {joint_states: 3}", "remappings must map topic names"),
                             ("rgbd_capture", "nice: 25", "nice must be an integer 0..19"),
                             ("safety_monitor", "nice: 5", "safety_monitor is never lowered in priority")):
        (tmp_path / f"{exe}.yaml").write_text("{}\n")
        bad.write_text(f"g:\n  nodes:\n    - executable: {exe}\n      {line}\n")
        with pytest.raises(GraphError, match=error):
            load_graph("g", bad)


def test_the_demo_puts_the_safety_chain_first():
    """The camera, the followed skeletons and the monitor at full priority; who-is-in-the-cell
    (segmentation, tracking) below them; calibration, part poses and the overlay below that;
    the networks on one thread each."""
    nodes = {n.name: n for n in load_graph("demo").nodes}
    assert all(nodes[n].nice == 0 for n in ("rgbd_capture", "human_pose", "safety_monitor", "safety_watchdog"))
    assert 0 < nodes["segmentation"].nice == nodes["tracker"].nice < nodes["robot_pose"].nice
    assert nodes["robot_pose"].nice == nodes["object_pose"].nice == nodes["visualizer"].nice
    assert all(node_parameters(nodes[n])["cpu_threads"] == 1
               for n in ("segmentation", "object_pose", "robot_pose", "human_pose"))
    humans, monitor = node_parameters(nodes["human_pose"]), node_parameters(nodes["safety_monitor"])
    assert humans["follow"] and humans["backend"] == "spdh" and monitor["depth_path"] == "with_skeletons"
    steps = {s.name: s for s in plan("demo") if isinstance(s, NodeLaunch)}
    assert steps["robot_pose"].nice == nodes["robot_pose"].nice and steps["safety_monitor"].nice == 0


def test_demo_safety_monitor_reads_the_calibrated_extrinsic():
    nodes = {gn.name: gn for gn in load_graph("demo").nodes}
    assert nodes["safety_monitor"].remappings == {"robot/base_pose": "ground_truth/robot/base_pose"}
    assert node_parameters(nodes["safety_monitor"])["robot_source"] == "joint_states"


def test_rviz_config_shows_images_markers_and_tf():
    rviz = yaml.safe_load((REPO / "config" / "hrc_perception.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    classes = {d["Class"] for d in displays}
    assert {"rviz_default_plugins/Image", "rviz_default_plugins/MarkerArray", "rviz_default_plugins/TF"} <= classes
    topics = {d["Topic"]["Value"] for d in displays if "Topic" in d}
    assert "/cell/camera/color/image_raw" in topics and "/cell/visualizer/markers" in topics
    assert "/cell/tracker/markers" in topics and "/cell/object_pose/markers" in topics
    assert "/cell/robot_pose/markers" in topics
    assert "/cell/human_pose/markers" in topics and "/cell/safety_monitor/markers" in topics
    # the robot base: robot_pose's TF hangs the camera under it (REP-105)
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == "panda_link0"


def _launch_module(launch_file: Path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(launch_file.stem.replace(".", "_"), launch_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("launch_file", sorted((REPO / "launch").glob("*.launch.py")))
def test_launch_file_generates_its_description(launch_file):
    """Where ``launch`` is installed: the launch file's own generate_launch_description()."""
    pytest.importorskip("launch")
    pytest.importorskip("launch_ros")
    from launch import LaunchDescription
    description = _launch_module(launch_file).generate_launch_description()
    assert isinstance(description, LaunchDescription)
    declared = {a.name for a in description.get_launch_arguments()}
    assert set(COMMON_ARGUMENTS) <= declared


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_launch_plan_starts_every_graph_node_as_configured(graph):
    """What the launch files launch (plain Python, no ``launch``): one Node per graph node,
    with the graph's executable, name, namespace, parameters and remappings."""
    steps = plan(graph)
    g = load_graph(graph)
    assert [s.name for s in steps] == [gn.name for gn in g.nodes]
    for step, gn in zip(steps, g.nodes):
        assert isinstance(step, NodeLaunch) and (REPO / "nodes" / step.executable).is_file()
        assert step.executable == gn.executable and step.namespace == g.namespace == GRAPHS[graph]["namespace"]
        assert step.parameters == (node_parameters(gn),)
        assert dict(step.remappings) == (GRAPHS[graph]["nodes"][g.nodes.index(gn)].get("remappings") or {})


def test_launch_plan_arguments():
    extra = ast.literal_eval(ast.parse((REPO / "launch" / "replay.launch.py").read_text()).body[-1]
                             .body[0].value.args[1])
    steps = plan("replay", {"namespace": "/cell2", "nodes": "rgbd_capture,safety_monitor", "params_file": "my.yaml",
                            "bag": "/data/run.mcap"}, extra)
    assert [s.name for s in steps] == ["rgbd_capture", "safety_monitor"]
    assert all(s.namespace == "/cell2" and s.parameters[-1] == "my.yaml" for s in steps)
    assert steps[0].parameters[0]["bag_path"] == "/data/run.mcap"
    assert "bag_path" not in steps[1].parameters[0]
    with pytest.raises(ValueError, match="has no node teleporter"):
        plan("replay", {"nodes": "teleporter"}, extra)
    (one,) = plan("replay", {"single_process": "true", "bag": "/data/run.mcap", "nodes": "rgbd_capture"}, extra)
    assert isinstance(one, ProcessLaunch)
    assert one.cmd == (sys.executable, "-m", "hrc_perception.ros.bringup", "replay",
                       "--set=rgbd_capture.bag_path=/data/run.mcap", "--only=rgbd_capture")
