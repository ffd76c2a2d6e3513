"""Installs the hrc_perception library and the `hrc-perception` command without ROS.

The ROS 2 build (colcon, ament_cmake) installs the same sources; this file serves
training, synthesis and evaluation on machines with no ROS workspace. The package's
files (config/, launch/, models/) go to ``<prefix>/share/hrc_perception`` as in a ROS
install, where ``hrc_perception.resources`` finds them.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
SHARE = "share/hrc_perception"


def share_files(*folders: str) -> list[tuple[str, list[str]]]:
    """data_files entries copying each folder's tree (files only) under share/hrc_perception."""
    out = [(SHARE, ["package.xml"])]
    for folder in folders:
        for d in sorted(p for p in (HERE / folder).rglob("*") if p.is_dir()) + [HERE / folder]:
            files = sorted(str(f.relative_to(HERE)) for f in d.iterdir() if f.is_file() and f.suffix != ".pyc")
            if files:
                out.append((f"{SHARE}/{d.relative_to(HERE)}", files))
    return out


setup(
    name="hrc_perception",
    version="0.1.0",
    description="Perception stack of a human-robot collaborative work cell",
    packages=find_packages(include=["hrc_perception", "hrc_perception.*"]),
    data_files=share_files("config", "launch", "models"),
    python_requires=">=3.10",
    install_requires=[
        "numpy", "scipy", "open3d", "pybullet", "yourdfpy", "trimesh", "shapely",
        "mapbox-earcut",   # trimesh's triangulate_polygon(engine="earcut") in sim/parts.py
        "numba", "rosbags", "pyyaml", "pillow", "tqdm", "pycocotools", "torch", "torchvision",
        "motmetrics", "matplotlib", "imageio-ffmpeg",
        "deep-sort-realtime",   # the peer the tracking eval and bench compare against
        "onnxruntime", "openvino",   # inference engines (hrc_perception/engines.py)
        "onnx",                 # torch.onnx.export needs it
        "opencv-python",        # BlazePose's crops (human_pose/blazepose.py)
    ],
    extras_require={
        "mediapipe": ["mediapipe==0.10.14",           # the BlazePose models (human_pose backend, person boxes)
                      "ai-edge-litert==2.3.0"],       # the interpreter that runs them
        "realsense": ["pyrealsense2"],                # the RealSense camera source
        "threads": ["threadpoolctl"],                 # one BLAS thread around each tracker update
    },
    entry_points={"console_scripts": ["hrc-perception=hrc_perception.cli:main"]},
    license="Apache-2.0",
)
