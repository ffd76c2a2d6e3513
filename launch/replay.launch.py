"""A recorded bag through the whole graph: ros2 launch hrc_perception replay.launch.py bag:=PATH"""
from hrc_perception.ros.launch_description import generate


def generate_launch_description():
    return generate("replay", {"bag": ("", "rosbag2 directory or .mcap file to replay", "rgbd_capture.bag_path")})
