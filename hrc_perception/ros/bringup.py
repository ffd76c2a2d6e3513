"""Run a node graph of ``config/graphs.yaml`` in one process (real rclpy, real DDS).

The same graph ``ros2 launch hrc_perception <graph>.launch.py`` starts as separate
processes, for machines without ``ros2 launch`` and for tests:

    python -m hrc_perception.ros.bringup demo [--set rgbd_capture.seed=3] [--duration 10]
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import rclpy
import yaml
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.parameter import Parameter

from hrc_perception.ros.graph import EXECUTABLES, Graph, GraphError, load_graph, node_parameters
from hrc_perception.ros.node_base import COMMON_PARAMS, ParameterError


def node_class(executable: str):
    module, name = EXECUTABLES[executable]
    return getattr(__import__(module, fromlist=[name]), name)


def _typed(cls, params: dict) -> list[Parameter]:
    """rclpy Parameters, ints given for float parameters made floats (YAML writes 15 for 15.0)."""
    floats = {s.name for s in COMMON_PARAMS + tuple(cls.PARAMS) if isinstance(s.default, float)}
    return [Parameter(k, value=float(v) if k in floats and isinstance(v, int) and not isinstance(v, bool) else v)
            for k, v in params.items()]


def start_graph(graph: Graph, context=None, overrides: dict[str, dict] | None = None,
                only: list[str] | None = None) -> list:
    """Construct the graph's nodes (which configure and activate themselves).

    overrides: {node name: {parameter: value}} applied last. only: node names to
    start (default all). Raises ParameterError / GraphError with a clear message.
    """
    nodes = []
    try:
        for gn in graph.nodes:
            if only and gn.name not in only:
                continue
            cls = node_class(gn.executable)
            params = node_parameters(gn)
            params.update((overrides or {}).get(gn.name, {}))
            remaps = [arg for a, b in gn.remappings.items() for arg in ("-r", f"{a}:={b}")]
            nodes.append(cls(node_name=gn.name, namespace=graph.namespace, context=context,
                             parameter_overrides=_typed(cls, params),
                             cli_args=["--ros-args", *remaps] if remaps else None))
    except Exception:
        for n in nodes:
            n.destroy_node()
        raise
    return nodes


def parse_sets(sets: list[str]) -> dict[str, dict]:
    """{node: {parameter: value}} of ``NODE.PARAM=VALUE`` strings (values read as YAML)."""
    out: dict[str, dict] = {}
    for s in sets:
        key, sep, value = s.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot:
            raise GraphError(f"--set {s!r}: expected NODE.PARAM=VALUE")
        out.setdefault(node, {})[param] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hrc_perception.ros.bringup", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graph", help="graph name in config/graphs.yaml (demo, replay, cell)")
    p.add_argument("--graphs", help="another graphs.yaml")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE", help="parameter override")
    p.add_argument("--only", help="comma-separated node names to run (default: all)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")
    args = p.parse_args(argv)
    try:
        graph = load_graph(args.graph, args.graphs)
        overrides = parse_sets(args.set)
    except GraphError as e:
        print(f"bringup: error: {e}", file=sys.stderr)
        return 2
    rclpy.init()
    try:
        nodes = start_graph(graph, overrides=overrides, only=args.only.split(",") if args.only else None)
    except (GraphError, ParameterError) as e:
        print(f"bringup: error: {e}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):     # stopped while a node was loading its model
        print("bringup: stopped while starting the graph", file=sys.stderr)
        rclpy.try_shutdown()
        return 0
    if not rclpy.ok():                                          # stopped between two nodes' starts
        print("bringup: stopped while starting the graph", file=sys.stderr)
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown()
        return 0
    # one node: the executor of its own executable (nodes/<name>); a multi-threaded one's
    # spinning thread keeps a backlog of futures and contends for the GIL with the callbacks
    # (the depth path's safety monitor lost most frames of a 15 Hz camera that way)
    executor = SingleThreadedExecutor() if len(nodes) == 1 else MultiThreadedExecutor()
    for n in nodes:
        executor.add_node(n)
    print(f"bringup: graph '{graph.name}' in {graph.namespace}: {', '.join(n.get_name() for n in nodes)}",
          file=sys.stderr)
    # the duration is checked between callbacks: shutting the context down from another
    # thread while the executor waits makes it touch destroyed handles
    deadline = time.monotonic() + args.duration if args.duration > 0 else math.inf
    try:
        while rclpy.ok() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        for n in nodes:
            n.destroy_node()
        rclpy.try_shutdown()
        time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main())
