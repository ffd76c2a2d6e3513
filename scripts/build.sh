#!/usr/bin/env bash
# Build the package (messages + install tree) with colcon into build/ install/ log/,
# against the system ROS 2 if one is sourced, else the ROS 2 wheels in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
colcon --log-base log build --base-paths . --build-base build --install-base install \
  --event-handlers console_direct- summary+ \
  --cmake-args -DPython3_EXECUTABLE="$(command -v python)" -DBUILD_TESTING=OFF
