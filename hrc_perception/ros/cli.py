"""``hrc-perception record`` and ``replay``: bags over live ROS 2 topics (rclpy, no rosbag2)."""
from __future__ import annotations

from pathlib import Path

from hrc_perception.cli_args import Commands


def _record(args) -> int:
    from hrc_perception.ros.bag_record import run_record
    return run_record(Path(args.out), topics=args.topics, duration_s=args.duration, topic_namespace=args.namespace)


def _replay(args) -> int:
    from hrc_perception.ros.bag_replay import run_replay
    return run_replay(Path(args.bag), rate=args.rate, clock=args.clock, loop=args.loop, restamp=args.restamp,
                      topics=args.topics, delay_s=args.delay)


def _scenario(args) -> int:
    import sys

    from hrc_perception.ros.scenario_bag import render_scenario_bag
    render_scenario_bag(Path(args.out), args.config or None, args.seed, args.duration,
                        log=lambda m: print(m, file=sys.stderr))
    return 0


def register(commands: Commands) -> None:
    r = commands.top.add_parser("record", help="record live ROS 2 topics into an MCAP bag (rclpy, no rosbag2)")
    r.add_argument("--out", required=True, help="bag directory to create (written as OUT.partial until stopped)")
    r.add_argument("--topics", nargs="+", metavar="T", help="topics to record (relative names: under --namespace); "
                   "default: every topic under --namespace, polled for new ones while recording")
    r.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until Ctrl-C)")
    r.add_argument("--namespace", default="/", help="namespace to record (default /: all topics)")
    r.set_defaults(func=_record)

    y = commands.top.add_parser("replay", help="publish a rosbag2 bag (MCAP or sqlite3) on its topics (rclpy, no "
                                               "rosbag2)")
    y.add_argument("bag", help="bag directory, or a single .mcap / .db3 file")
    y.add_argument("--rate", type=float, default=1.0, metavar="R",
                   help="speed factor (default 1; 0 or inf: as fast as possible)")
    y.add_argument("--clock", action="store_true", help="also publish /clock with the bag time")
    y.add_argument("--loop", action="store_true", help="start over at the end until Ctrl-C")
    y.add_argument("--restamp", action="store_true", help="rewrite header stamps to the replay time")
    y.add_argument("--topics", nargs="+", metavar="T", help="replay only these topics")
    y.add_argument("--delay", type=float, default=1.0, metavar="S",
                   help="seconds to wait before the first message, for subscribers to connect (default 1)")
    y.set_defaults(func=_replay)

    s = commands.top.add_parser("scenario", help="render the synthetic cell into an MCAP bag (camera, joint_states, "
                                                 "ground truth) to replay at camera rate with `replay --restamp`")
    s.add_argument("--out", required=True, help="bag directory to create (must not exist)")
    s.add_argument("--config", default="", help="cell YAML (default: built-in)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--duration", type=float, default=10.0, help="seconds of the cell, at its frame rate")
    s.set_defaults(func=_scenario)
