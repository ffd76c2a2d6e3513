"""The synthetic cell: robot (URDF + forward kinematics), people, parts, renderer, depth
noise, motion scripts, and the dataset and bag exports (``hrc-perception synth``)."""
