"""DenseFusion 6D part poses: crops and clouds (data), networks, losses, training,
evaluation against ICP baselines, and the predictor the object_pose node uses."""
