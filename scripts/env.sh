# Source this file (bash): the environment to run hrc_perception from this checkout.
# The Makefile and the tests use it. With a system ROS 2 sourced beforehand
# (/opt/ros/<distro>/setup.bash, so ROS_DISTRO is set) that ROS is used; otherwise
# the ROS 2 wheels in .venv (the venv is then the ROS prefix: share/, lib/).
# Adds the colcon install of this package (messages) when it has been built.
HRC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HRC_VENV="${HRC_VENV:-$HRC_ROOT/.venv}"
export PATH="$HRC_VENV/bin:$PATH"
if [ -z "${ROS_DISTRO:-}" ]; then
  export AMENT_PREFIX_PATH="$HRC_VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$HRC_VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  # rclpy's wheels re-execute Python once to set this; setting it first avoids that.
  for d in "$HRC_VENV"/lib "$HRC_VENV"/lib/python3*/site-packages/ros_*.libs; do
    [ -d "$d" ] && LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
  export LD_LIBRARY_PATH
  export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1
fi
HRC_INSTALL="$HRC_ROOT/install/hrc_perception"
if [ -d "$HRC_INSTALL/lib" ]; then
  export AMENT_PREFIX_PATH="$HRC_INSTALL:$AMENT_PREFIX_PATH"
  export LD_LIBRARY_PATH="$HRC_INSTALL/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  for d in "$HRC_INSTALL"/lib/python3*/site-packages; do
    [ -d "$d" ] && export PYTHONPATH="$d${PYTHONPATH:+:$PYTHONPATH}"
  done
fi
# This checkout's sources come first; the install adds only what the build generates
# (hrc_perception.msg, found through the package's extended __path__).
export PYTHONPATH="$HRC_ROOT${PYTHONPATH:+:$PYTHONPATH}"
unset d
