"""``hrc-perception bench safety``, ``eval safety_depth``, ``eval safety_scenarios`` and ``background``."""
from __future__ import annotations

import sys

from hrc_perception.cli_args import Commands, add_json, input_file, write_json


def _bench(args) -> int:
    from hrc_perception.safety.bench import bench_safety
    bench_safety(frames=args.frames, seed=args.seed, json_path=args.json)
    return 0


def _eval_depth(args) -> int:
    from hrc_perception.safety.depth_space import DepthSpaceParams
    from hrc_perception.safety.evaluate_depth import evaluate_depth_path
    from hrc_perception.safety.monitor import monitor_params
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    run = SynthRun(load_cell_config(args.config), seed=args.seed)
    floors = {} if args.arm_floor is None else {"min_arm_speed_mps": args.arm_floor}
    res = evaluate_depth_path(run, list(range(args.episodes)), monitor_params(floors), DepthSpaceParams(),
                              empty_frames=args.empty_frames, frame_step=args.step, age_s=args.age,
                              skeletons=args.skeletons)
    res["data"] = {"config": args.config, "seed": args.seed, "episodes": args.episodes, "step": args.step,
                   "age_s": args.age, "empty_frames": args.empty_frames, "skeletons": args.skeletons,
                   "min_arm_speed_mps": monitor_params(floors).min_arm_speed_mps}
    print(f"frames {res['frames']}: OK while the truth stops {res['ok_while_truth_stop']}; availability "
          f"{res['availability']} (at half speed {res['availability_at_half_speed']}) of "
          f"{res['truth_moves_frames']} frames the truth lets the robot move; empty cell moves "
          f"{res['empty_cell_moves']}")
    print(f"availability ceiling (the monitor's rule on perfect skeletons): {res['availability_ceiling']}")
    print(f"distance error visible {res['distance_error_visible']}, hidden {res['distance_error_hidden']}")
    print(f"estimate minus the visible body surface's distance: {res['distance_minus_visible_surface']}")
    print(f"stage ms (median): {res['stage_ms_median']}")
    if args.json:
        write_json(res, args.json)
    return 0


def _eval_scenarios(args) -> int:
    from hrc_perception.safety.depth_space import DepthSpaceParams
    from hrc_perception.safety.monitor import monitor_params
    from hrc_perception.safety.scenarios import SCENARIOS, evaluate_scenarios, scenario_table
    names = [s.name for s in SCENARIOS]
    unknown = [n for n in args.only if n not in names]
    if unknown:
        print(f"error: --only {unknown[0]}: no such scenario (known: {', '.join(names)})", file=sys.stderr)
        return 2
    chosen = [s for s in SCENARIOS if not args.only or s.name in args.only]
    res = evaluate_scenarios(chosen, args.seed, monitor_params({}), DepthSpaceParams(), frame_step=args.step,
                             age_s=args.age, empty_frames=args.empty_frames)
    res["data"] = {"seed": args.seed, "step": args.step, "age_s": args.age, "empty_frames": args.empty_frames}
    print(scenario_table(res))
    if args.json:
        write_json(res, args.json)
    return 0


def synthetic_background(config: str, seed: int, episode: int, frames: int, out: str) -> str:
    """Write the empty-cell background of one synthetic episode (what the synthetic camera of
    rgbd_capture shows for that seed: episode 0 first) to out; a summary line."""
    from hrc_perception.safety.background_sources import episode_background
    from hrc_perception.safety.depth_space import DepthSpaceParams
    from hrc_perception.safety.robot_surface import RobotSurface
    from hrc_perception.sim.config import CellConfig, load_cell_config
    from hrc_perception.sim.generator import SynthRun
    run = SynthRun(load_cell_config(config) if config else CellConfig(), seed)
    model = run.assets.robot
    bg = episode_background(run.episode(episode), run.renderer, model, RobotSurface.from_model(model), frames,
                            DepthSpaceParams())
    bg.save(out)
    return f"background of seed {seed} episode {episode}: {frames} empty-cell frames, " \
           f"{bg.known_fraction:.0%} of pixels known -> {out}"


def _background(args) -> int:
    if not args.bag:
        print(synthetic_background(args.config, args.seed, args.episode, args.frames, args.out))
        return 0
    import numpy as np

    from hrc_perception.geometry import make_T, matrix_from_quaternion
    from hrc_perception.safety.background_sources import bag_background
    from hrc_perception.safety.depth_space import DepthSpaceParams
    from hrc_perception.sim.config import RobotConfig
    from hrc_perception.sim.robot import RobotModel
    pose = np.array(args.base_pose or [], dtype=np.float64)
    if pose.shape != (7,) or not np.isfinite(pose).all() or np.linalg.norm(pose[3:]) < 1e-6:
        print("error: --bag needs --base-pose X Y Z QX QY QZ QW (the robot base in the camera's optical frame, "
              "a non-zero quaternion)", file=sys.stderr)
        return 2
    T = make_T(matrix_from_quaternion(pose[3:] / np.linalg.norm(pose[3:])), pose[:3])
    cfg = RobotConfig()
    model = RobotModel(RobotConfig(urdf=args.urdf or cfg.urdf, keypoints=cfg.keypoints, gripper_link=cfg.gripper_link))
    try:
        bg = bag_background(args.bag, model, T, args.frames, DepthSpaceParams(), args.namespace)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    bg.save(args.out)
    print(f"background of {args.bag}: {bg.frames} frames, {bg.known_fraction:.0%} of pixels known -> {args.out}")
    return 0


def register(commands: Commands) -> None:
    g = commands.top.add_parser("background", help="the empty cell's background depth for the safety monitor's "
                                "depth path (background_file), from a recording of the empty cell or synthetic "
                                "empty-cell frames")
    g.add_argument("--bag", help="a recording of the empty cell (colour, depth, camera_info, joint_states), as "
                   "hrc-perception record writes; without it: the synthetic cell")
    g.add_argument("--base-pose", nargs=7, type=float, metavar=("X", "Y", "Z", "QX", "QY", "QZ", "QW"),
                   help="--bag: the robot base in the camera's optical frame (metres, quaternion)")
    g.add_argument("--urdf", default="", help="--bag: the robot's URDF ('' = the synthetic cell's Panda)")
    g.add_argument("--namespace", default="/cell", help="--bag: the topics' namespace")
    g.add_argument("--config", default="", help="cell YAML ('' = the built-in cell, as rgbd_capture's synthetic "
                   "source)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--episode", type=int, default=0)
    g.add_argument("--frames", type=int, default=30, help="empty-cell frames spread over the episode or the bag")
    g.add_argument("--out", required=True, help="the .npz to write")
    g.set_defaults(func=_background)

    e = commands.eval.add_parser("safety_depth", help="the depth-space safety path alone on synthetic episodes "
                                 "against the true verdicts (no network, no ROS)")
    e.add_argument("--config", type=input_file, default="config/cell.yaml")
    e.add_argument("--seed", type=int, default=2300, help="2300: tuning; 2330: held-out (README)")
    e.add_argument("--episodes", type=int, default=2)
    e.add_argument("--step", type=int, default=3, help="judge every step-th frame")
    e.add_argument("--age", type=float, default=0.1, help="the inputs' age when judged (s)")
    e.add_argument("--empty-frames", type=int, default=30, help="empty-cell frames the background is learned from")
    e.add_argument("--skeletons", action="store_true", help="the people's true visible joints explain their "
                   "foreground, judged at their true speed (the bound perfect skeletons give)")
    e.add_argument("--arm-floor", type=float, help="floor under a person's speed (m/s; default the monitor's "
                   "min_arm_speed_mps, 2.0 as ISO 13855)")
    add_json(e)
    e.set_defaults(func=_eval_depth)

    sc = commands.eval.add_parser("safety_scenarios", help="the depth path alone and with perfect skeletons over "
                                  "the test scenarios (config/scenarios/: a 2 m/s walker, a reach over the table, "
                                  "two people, 30 s standing still, a carried part, the empty cell; the demos' seeds)")
    sc.add_argument("--seed", type=int, default=2300, help="seed of the scripted scenarios (2300: tuning; "
                    "2330: held-out); the demos keep seeds 0 and 2")
    sc.add_argument("--only", nargs="+", default=[], metavar="NAME", help="these scenarios only")
    sc.add_argument("--step", type=int, default=3, help="judge every step-th frame")
    sc.add_argument("--age", type=float, default=0.1, help="the inputs' age when judged (s)")
    sc.add_argument("--empty-frames", type=int, default=30, help="empty-cell frames the background is learned from")
    add_json(sc)
    sc.set_defaults(func=_eval_scenarios)

    b = commands.bench.add_parser("safety", help="safety verdict time per frame with 1, 3, 6 people (goal <= 2 ms)")
    b.add_argument("--frames", type=int, default=60)
    b.add_argument("--seed", type=int, default=970)
    add_json(b)
    b.set_defaults(func=_bench)
