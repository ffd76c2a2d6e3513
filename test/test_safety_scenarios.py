"""The test scenarios of the safety verdict (safety/scenarios.py, config/scenarios/)."""
from hrc_perception.resources import package_file
from hrc_perception.safety.depth_space import DepthSpaceParams
from hrc_perception.safety.monitor import monitor_params
from hrc_perception.safety.scenarios import MODES, SCENARIOS, Scenario, evaluate_scenarios, scenario_table
from hrc_perception.sim.config import load_cell_config


def test_every_scenario_is_a_valid_cell_of_what_its_name_says():
    cfgs = {s.name: load_cell_config(package_file(s.config)) for s in SCENARIOS}
    assert cfgs["walk_at_robot_2mps"].humans.script == "walk_at_robot"
    assert cfgs["walk_at_robot_2mps"].humans.walk_speed_m_s == (2.0, 2.0)
    assert cfgs["reach_over_table"].humans.script == "reach_over_table"
    assert cfgs["two_people"].humans.count == (2, 2)
    still = cfgs["stand_still_30s"]
    assert still.humans.script == "stand_still" and still.sequence.episode_frames / still.sequence.fps >= 30
    assert cfgs["carried_part"].robot.random_move_probability == 0.0
    assert cfgs["empty_cell"].humans.count == (0, 0)
    assert {s.seed for s in SCENARIOS if s.name.endswith("_demo")} == {0, 2}
    assert len(cfgs) == len(SCENARIOS)                       # names are unique


def test_a_small_walker_is_never_ok_while_the_truth_stops(tmp_path):
    """The 2 m/s walker on a small camera, 3 s (15 frames judged): in the cell, near the
    robot, every mode judged, none OK while the truth stops; one table row per scenario."""
    small = tmp_path / "walker.yaml"
    small.write_text(f"extends: {package_file('config/scenarios/walk_at_robot_2mps.yaml').resolve()}\n"
                     "camera: {width: 160, height: 120, fx: 153.75, fy: 153.75, cx: 80.0, cy: 60.0}\n"
                     "sequence: {episode_frames: 45}\n")
    res = evaluate_scenarios([Scenario("walker", str(small), 5)], 2300, monitor_params({}), DepthSpaceParams(),
                             frame_step=3, empty_frames=4, log=lambda *_: None)
    row = res["scenarios"]["walker"]
    assert set(MODES) <= set(row) and row["seed"] == 5
    for mode in MODES:
        assert row[mode]["frames"] == 15 and row[mode]["ok_while_truth_stop"] == 0
    assert res["total"]["depth_alone"] == {"frames": 15, "ok_while_truth_stop": 0}
    truth = row["depth_alone"]["confusion_estimate_vs_truth"]
    assert sum(v for k, v in truth.items() if k.endswith("|PROTECTIVE_STOP")) > 0     # the walker came near
    assert row["depth_alone"]["availability"] in (0.0, None)     # the view's edge is near the robot: never OK
    assert len(scenario_table(res).splitlines()) == 3


def test_unknown_scenario_is_a_clean_error(capsys):
    from hrc_perception.cli import main
    assert main(["eval", "safety_scenarios", "--only", "moonwalk"]) == 2
    assert "no such scenario" in capsys.readouterr().err
