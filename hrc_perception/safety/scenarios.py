"""The safety verdict over the test scenarios (``hrc-perception eval safety_scenarios``).

A scenario is a cell YAML (``config/scenarios/*.yaml``: a scripted person or a special
cell; the plain ``config/cell.yaml`` for the demos' seeds) with a seed: its own (the demos
run seeds 0 and 2) or the command's (2300 tuning, 2330 held-out). Each is judged offline by
:func:`~hrc_perception.safety.evaluate_depth.evaluate_depth_path` twice: the depth path
alone, and the depth path with perfect skeletons of what the camera sees explaining the
people's foreground (the best the skeleton path can add). The space the camera does not
see beside its view counts as a possible person (``unseen_space`` 'occupied', the
default) or is taken as guarded by the cell ('guarded': what a fenced cell whose openings
the camera watches may assume); MODES names the three runs. The figure that must be 0 in
every row: frames judged OK while the truth says PROTECTIVE_STOP (with 'guarded', those
where the person was beside the view are counted apart: the guard's to stop).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from hrc_perception.resources import package_file

# mode -> (skeletons explain the people's foreground, what the space beside the view holds)
MODES = {"depth_alone": (False, "occupied"), "depth_alone_view_guarded": (False, "guarded"),
         "depth_with_skeletons_view_guarded": (True, "guarded")}


@dataclass(frozen=True)
class Scenario:
    """name; config: cell YAML (relative paths resolve in the package's share folder);
    seed: None = the evaluation's seed; episodes: how many of the seed's episodes;
    monitor: (name, value) pairs of MonitorParams set for this scenario."""
    name: str
    config: str
    seed: int | None = None
    episodes: int = 1
    monitor: tuple[tuple[str, float], ...] = ()


SCENARIOS = (
    Scenario("seed0_demo", "config/cell.yaml", 0),
    Scenario("seed2_demo", "config/cell.yaml", 2),
    Scenario("walk_at_robot_2mps", "config/scenarios/walk_at_robot_2mps.yaml", episodes=2),
    Scenario("reach_over_table", "config/scenarios/reach_over_table.yaml", episodes=2),
    Scenario("two_people", "config/scenarios/two_people.yaml", episodes=2),
    Scenario("stand_still_30s", "config/scenarios/stand_still_30s.yaml"),
    Scenario("carried_part", "config/scenarios/carried_part.yaml", episodes=2),
    Scenario("carried_part_payload", "config/scenarios/carried_part.yaml", episodes=2,
             monitor=(("payload_radius_m", 0.15),)),       # the largest part: 0.134 m across
    Scenario("empty_cell", "config/scenarios/empty_cell.yaml"),
)

KEPT = ("frames", "ok_while_truth_stop", "ok_while_truth_stop_person_unseen", "truth_moves_frames", "availability",
        "availability_at_half_speed", "availability_ceiling", "distance_error_visible", "distance_error_hidden",
        "empty_cell_moves", "frames_part_carried", "confusion_estimate_vs_truth")


def evaluate_scenarios(scenarios, seed: int, monitor, params, frame_step: int = 3, age_s: float = 0.1,
                       empty_frames: int = 30, log=print) -> dict:
    """Per scenario and mode (MODES), the figures of KEPT; 'total': per mode, frames and OK
    while the truth stops summed over the scenarios."""
    from hrc_perception.safety.evaluate_depth import evaluate_depth_path
    from hrc_perception.sim.config import load_cell_config
    from hrc_perception.sim.generator import SynthRun
    out, total = {}, {m: {"frames": 0, "ok_while_truth_stop": 0} for m in MODES}
    for sc in scenarios:
        s = seed if sc.seed is None else sc.seed
        cfg = load_cell_config(package_file(sc.config))
        row = {"config": sc.config, "seed": s, "episodes": sc.episodes, "monitor": dict(sc.monitor)}
        judged_by = replace(monitor, **dict(sc.monitor))
        for mode, (skeletons, unseen) in MODES.items():
            log(f"{sc.name} ({sc.config}, seed {s}): {mode}")
            res = evaluate_depth_path(SynthRun(cfg, seed=s), list(range(sc.episodes)), judged_by,
                                      replace(params, unseen_space=unseen),
                                      empty_frames=empty_frames, frame_step=frame_step, age_s=age_s,
                                      skeletons=skeletons, log=lambda m: log("  " + m))
            row[mode] = {k: res[k] for k in KEPT}
            total[mode]["frames"] += res["frames"]
            total[mode]["ok_while_truth_stop"] += res["ok_while_truth_stop"]
            log(f"  OK while the truth stops: {res['ok_while_truth_stop']} of {res['frames']} frames; availability "
                f"{res['availability']} of {res['truth_moves_frames']}")
        out[sc.name] = row
    return {"scenarios": out, "total": total}


def scenario_table(result: dict) -> str:
    """A plain-text table of evaluate_scenarios' result, one row per scenario: frames,
    true STOP frames, then per mode OK while the truth stops (of them with the person
    beside the view) and availability."""
    head = f"{'scenario':20s} {'seed':>5s} {'frames':>6s} {'STOP':>5s}"
    rows = [head + "".join(f" | {m[:26]:26s}" for m in MODES),
            " " * len(head) + f" | {'OK|STOP (unseen)':>19s} {'moves':>6s}" * len(MODES)]
    for name, r in result["scenarios"].items():
        first = r[next(iter(MODES))]
        stops = sum(v for key, v in first["confusion_estimate_vs_truth"].items() if key.endswith("|PROTECTIVE_STOP"))
        line = f"{name:20s} {r['seed']:5d} {first['frames']:6d} {stops:5d}"
        for m in MODES:
            x = r[m]
            moves = "-" if x["availability"] is None else f"{x['availability']:.2f}"
            cell = f"{x['ok_while_truth_stop']:7d} ({x['ok_while_truth_stop_person_unseen']:d})"
            line += f" | {cell:19s} {moves:>6s}"
        rows.append(line)
    return "\n".join(rows)
