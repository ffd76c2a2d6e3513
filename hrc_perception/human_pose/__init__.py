"""Every person's 3D skeleton: 2D backends on person crops (BlazePose via mediapipe; SPDH
on depth), depth lifting, per-identity smoothing, evaluation."""
