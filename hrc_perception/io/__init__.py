"""Training-dataset exporters (COCO, BOP, SPDH keypoints) and atomic file output."""
