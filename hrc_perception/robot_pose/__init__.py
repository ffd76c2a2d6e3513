"""SPDH robot pose from depth, and camera-to-robot calibration."""
