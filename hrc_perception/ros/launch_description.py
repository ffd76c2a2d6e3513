"""Launch descriptions of the graphs in config/graphs.yaml (used by launch/*.launch.py).

Launch arguments of every graph:
  namespace:=/cell        topic namespace of all nodes
  nodes:=a,b              run only these nodes (default: all of the graph)
  params_file:=FILE       an extra ROS parameter file applied after the package's own
  single_process:=true    run the graph in one process (hrc_perception.ros.bringup)
plus graph-specific ones (replay: bag:=PATH).
"""
from __future__ import annotations

from hrc_perception.ros.graph import load_graph, node_parameters

COMMON_ARGUMENTS = {
    "namespace": ("", "topic namespace of all nodes (default: the graph's)"),
    "nodes": ("", "comma-separated node names to run (default: all)"),
    "params_file": ("", "extra ROS parameter file, applied after the package's"),
    "single_process": ("false", "run every node in one process"),
}


def generate(graph_name: str, extra_arguments: dict[str, tuple[str, str, str]] | None = None):
    """LaunchDescription of a graph. extra_arguments: {argument: (default, description,
    'node.parameter' it sets)}."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
    from launch_ros.actions import Node

    graph = load_graph(graph_name)
    extra_arguments = extra_arguments or {}

    def actions(context):
        get = context.launch_configurations.get
        namespace = get("namespace") or graph.namespace
        only = [n for n in (get("nodes") or "").split(",") if n]
        sets = {}
        for arg, (_, _, target) in extra_arguments.items():
            if get(arg):
                node, param = target.split(".")
                sets.setdefault(node, {})[param] = get(arg)
        if get("single_process", "false").lower() == "true":
            cmd = ["python3", "-m", "hrc_perception.ros.bringup", graph_name]
            cmd += [f"--set={n}.{k}={v}" for n, kv in sets.items() for k, v in kv.items()]
            cmd += [f"--only={','.join(only)}"] if only else []
            return [ExecuteProcess(cmd=cmd, output="screen")]
        out = []
        for gn in graph.nodes:
            if only and gn.name not in only:
                continue
            params = [node_parameters(gn) | sets.get(gn.name, {})]
            if get("params_file"):
                params.append(get("params_file"))
            out.append(Node(package="hrc_perception", executable=gn.executable, name=gn.name,
                            namespace=namespace, parameters=params, remappings=list(gn.remappings.items()),
                            output="screen"))
        return out

    declared = [DeclareLaunchArgument(name, default_value=default, description=desc)
                for name, (default, desc) in COMMON_ARGUMENTS.items()]
    declared += [DeclareLaunchArgument(name, default_value=default, description=desc)
                 for name, (default, desc, _) in extra_arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=actions)])
