"""The synthetic cell through the whole graph: ros2 launch hrc_perception demo.launch.py"""
from hrc_perception.ros.launch_description import generate


def generate_launch_description():
    return generate("demo", {"seed": ("0", "random seed of the synthetic cell", "rgbd_capture.seed")})
