"""Evaluation tools of the running node graph (the per-component ``evaluate.py`` modules
judge one learned component on its own data; these judge the graph):

  demo             the demo graph end to end, one process per node: a bag, report.md, a video
  accuracy         node outputs against the synthetic ground truth, message by message
  safety_report    a recorded run's safety/status against verdicts of the true skeletons
  bench_transport  640x480 colour + depth through rclpy: frames/s and latency
  fault_injection  nodes killed, stalled and restarted under the running graph: time to a stop

They read and write ROS messages (through ``hrc_perception.ros.convert``) and start nodes
as processes; the node glue itself stays in ``hrc_perception.ros``.
"""
