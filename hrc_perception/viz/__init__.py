"""Drawing of perception results on images (numpy + Pillow only, no rclpy).

:mod:`hrc_perception.viz.draw` holds the pieces: colours, depth colour map,
instance masks, skeletons, part axes, track boxes, the safety banner and the
latency table. The contact sheet (``hrc-perception preview``) and the visualizer
node (``hrc_perception.ros.visualizer``) both draw with them.
"""
