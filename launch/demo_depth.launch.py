"""The synthetic cell judged by depth alone (no colour network): ros2 launch hrc_perception demo_depth.launch.py
background:=BG.npz (hrc-perception background --seed 0 --out BG.npz writes the empty cell's)"""
from hrc_perception.ros.launch_description import generate


def generate_launch_description():
    return generate("demo_depth", {"seed": ("0", "random seed of the synthetic cell", "rgbd_capture.seed"),
                                   "background": ("", "the empty cell's background depth (.npz)",
                                                  "safety_monitor.background_file")})
