"""The `hrc-perception` command is assembled from each component's own ``cli.py``."""
import argparse
import subprocess
import sys

from hrc_perception.cli import build_parser, command_modules

EXPECTED = {
    "train": {"segmentation", "embedding", "object_pose", "robot_pose", "human_pose"},
    "eval": {"segmentation", "object_pose", "robot_pose", "human_pose", "tracking", "safety", "safety_depth",
             "safety_scenarios"},
    "bench": {"synth", "segmentation", "object_pose", "robot_pose", "human_pose", "tracking", "safety", "ros",
              "engines"},
}
TOP = {"synth", "preview", "record", "replay", "scenario", "bop2coco", "background"} | set(EXPECTED)


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_command_comes_from_a_component_module():
    assert {m.split(".")[1] for m in command_modules()} == {
        "evaluation", "human_pose", "io", "object_pose", "robot_pose", "ros", "safety", "segmentation", "sim",
        "tracking"}
    top = _choices(build_parser())
    assert set(top) == TOP
    for verb, names in EXPECTED.items():
        assert set(_choices(top[verb])) == names, verb
    for name, parser in top.items():   # every leaf command runs a function of its component's cli module
        leaves = _choices(parser).items() if name in EXPECTED else [(name, parser)]
        for leaf, p in leaves:
            func = p.get_default("func")
            assert callable(func) and func.__module__ in command_modules(), (name, leaf, func)


def test_parsing_the_commands_imports_no_heavy_library():
    """In a fresh interpreter: building the parser imports no component's heavy libraries."""
    code = ("import sys; from hrc_perception.cli import build_parser; build_parser().parse_args(['eval', 'tracking']); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'open3d', 'rclpy'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
