"""A RealSense camera through the whole graph: ros2 launch hrc_perception cell.launch.py"""
from hrc_perception.ros.launch_description import generate


def generate_launch_description():
    return generate("cell")
