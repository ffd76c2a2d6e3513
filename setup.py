"""Installs the hrc_perception library and the `hrc-perception` command without ROS.

The ROS 2 build (colcon, ament_cmake) installs the same sources; this file serves
training, synthesis and evaluation on machines with no ROS workspace.
"""
from setuptools import find_packages, setup

setup(
    name="hrc_perception",
    version="0.1.0",
    description="Perception stack of a human-robot collaborative work cell",
    packages=find_packages(include=["hrc_perception", "hrc_perception.*"]),
    package_data={"hrc_perception": ["config/*.yaml"]},
    python_requires=">=3.10",
    install_requires=[
        "numpy", "scipy", "open3d", "pybullet", "yourdfpy", "trimesh", "shapely",
        "mapbox-earcut", "numba", "rosbags", "pyyaml", "pillow", "tqdm", "pycocotools",
    ],
    entry_points={"console_scripts": ["hrc-perception=hrc_perception.cli:main"]},
    license="Apache-2.0",
)
