"""Launch descriptions of the graphs in config/graphs.yaml (used by launch/*.launch.py).

Launch arguments of every graph:
  namespace:=/cell        topic namespace of all nodes
  nodes:=a,b              run only these nodes (default: all of the graph)
  params_file:=FILE       an extra ROS parameter file applied after the package's own
  single_process:=true    run the graph in one process (hrc_perception.ros.bringup)
plus graph-specific ones (replay: bag:=PATH).

``plan`` is plain Python (no launch, no rclpy): what a graph launches for given launch
arguments. ``generate`` wraps that plan in launch actions; only it needs ``launch``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

from hrc_perception.ros.graph import load_graph, node_parameters

COMMON_ARGUMENTS = {
    "namespace": ("", "topic namespace of all nodes (default: the graph's)"),
    "nodes": ("", "comma-separated node names to run (default: all)"),
    "params_file": ("", "extra ROS parameter file, applied after the package's"),
    "single_process": ("false", "run every node in one process"),
}


@dataclass(frozen=True)
class NodeLaunch:
    """One ``launch_ros.actions.Node``: ``ros2 run hrc_perception <executable>`` as ``name``
    under ``namespace``, with parameters (dicts and parameter-file paths, applied in order)."""
    executable: str
    name: str
    namespace: str
    parameters: tuple
    remappings: tuple[tuple[str, str], ...]
    nice: int = 0        # > 0: started under ``nice -n`` (the graph's nice)


@dataclass(frozen=True)
class ProcessLaunch:
    """One ``launch.actions.ExecuteProcess``: the command line."""
    cmd: tuple[str, ...]


def plan(graph_name: str, arguments: dict[str, str] | None = None,
         extra_arguments: dict[str, tuple[str, str, str]] | None = None) -> list[NodeLaunch | ProcessLaunch]:
    """What graph ``graph_name`` launches for the launch ``arguments`` given (the names of
    COMMON_ARGUMENTS and extra_arguments; missing or '' = default). extra_arguments:
    {argument: (default, description, 'node.parameter' it sets)}. single_process runs
    bringup with the interpreter this package runs in (``sys.executable``)."""
    graph = load_graph(graph_name)
    extra_arguments = extra_arguments or {}
    get = (arguments or {}).get
    namespace = get("namespace") or graph.namespace
    only = [n for n in (get("nodes") or "").split(",") if n]
    unknown = sorted(set(only) - {gn.name for gn in graph.nodes})
    if unknown:
        raise ValueError(f"nodes:={get('nodes')}: graph {graph_name!r} has no node {', '.join(unknown)} "
                         f"(nodes: {', '.join(gn.name for gn in graph.nodes)})")
    sets: dict[str, dict[str, str]] = {}
    for arg, (_, _, target) in extra_arguments.items():
        if get(arg):
            node, param = target.split(".")
            sets.setdefault(node, {})[param] = get(arg)
    if (get("single_process") or "false").lower() == "true":
        cmd = [sys.executable, "-m", "hrc_perception.ros.bringup", graph_name]
        cmd += [f"--set={n}.{k}={v}" for n, kv in sets.items() for k, v in kv.items()]
        cmd += [f"--only={','.join(only)}"] if only else []
        return [ProcessLaunch(tuple(cmd))]
    out: list[NodeLaunch | ProcessLaunch] = []
    for gn in graph.nodes:
        if only and gn.name not in only:
            continue
        params = [node_parameters(gn) | sets.get(gn.name, {})]
        if get("params_file"):
            params.append(get("params_file"))
        out.append(NodeLaunch(gn.executable, gn.name, namespace, tuple(params), tuple(gn.remappings.items()),
                              gn.nice))
    return out


def generate(graph_name: str, extra_arguments: dict[str, tuple[str, str, str]] | None = None):
    """LaunchDescription of a graph: its launch arguments, and the ``plan`` for their values."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
    from launch_ros.actions import Node

    extra_arguments = extra_arguments or {}
    names = list(COMMON_ARGUMENTS) + list(extra_arguments)

    def actions(context):
        arguments = {n: context.launch_configurations.get(n, "") for n in names}
        out = []
        for step in plan(graph_name, arguments, extra_arguments):
            if isinstance(step, ProcessLaunch):
                out.append(ExecuteProcess(cmd=list(step.cmd), output="screen"))
            else:
                out.append(Node(package="hrc_perception", executable=step.executable, name=step.name,
                                namespace=step.namespace, parameters=list(step.parameters),
                                remappings=list(step.remappings), output="screen",
                                prefix=f"nice -n {step.nice}" if step.nice else None))
        return out

    load_graph(graph_name)   # a broken graph fails when the launch file is loaded
    declared = [DeclareLaunchArgument(name, default_value=default, description=desc)
                for name, (default, desc) in COMMON_ARGUMENTS.items()]
    declared += [DeclareLaunchArgument(name, default_value=default, description=desc)
                 for name, (default, desc, _) in extra_arguments.items()]
    return LaunchDescription(declared + [OpaqueFunction(function=actions)])
