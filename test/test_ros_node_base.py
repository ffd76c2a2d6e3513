"""Node base: parameter descriptors and validation, lifecycle with autostart (a model freed on deactivate,
loaded again on activate), error counters, diagnostics (WARN over a window of recent problems, totals kept)."""
import pytest
from conftest import spin_until
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from hrc_perception.ros.node_base import HrcNode, ParameterError, ParamSpec, ProblemWindow


class Probe(HrcNode):
    PARAMS = (ParamSpec("rate_hz", 10.0, "publishing rate", min_value=0.1, max_value=100.0),
              ParamSpec("mode", "fast", "how", choices=("fast", "slow")),
              ParamSpec("model_path", "", "weights file", read_only=True))

    def __init__(self, **kw):
        self.calls = []
        super().__init__("probe", **kw)

    def on_configure_hook(self):
        self.calls.append("configure")

    def on_activate_hook(self):
        self.calls.append("activate")

    def on_deactivate_hook(self):
        self.calls.append("deactivate")

    def on_cleanup_hook(self):
        self.calls.append("cleanup")


class ModelProbe(HrcNode):
    """A model node: its model freed on deactivate and loaded again on activate."""
    MODEL_ATTR = "model"

    def __init__(self, **kw):
        self.model = None
        self.loads = 0
        self.fail = False
        super().__init__("model_probe", **kw)

    def on_configure_hook(self):
        self.load_model_or_fail()

    def load_model(self):
        if self.fail:
            raise FileNotFoundError("weights gone")
        self.loads += 1
        self.model = object()


def test_model_freed_on_deactivate_loaded_again_on_activate(ros_context):
    node = ModelProbe(context=ros_context)
    try:
        assert node.is_active and node.loads == 1 and node.model is not None   # autostart: one load
        node.trigger_deactivate()
        assert node.lifecycle_state == "inactive" and node.model is None
        node.trigger_activate()
        assert node.is_active and node.loads == 2 and node.model is not None
        # a reload that fails: the activation fails with the reason, the node stays up, inactive
        node.trigger_deactivate()
        node.fail = True
        node.trigger_activate()
        assert node.lifecycle_state == "inactive" and node.model is None and node.configure_error == "weights gone"
        node.fail = False
        node.trigger_activate()
        assert node.is_active and node.configure_error is None
        node.trigger_deactivate()
        node.trigger_activate()
        node.trigger_deactivate()
        node.trigger_cleanup()
        assert node.model is None and node.lifecycle_state == "unconfigured"
    finally:
        node.destroy_node()


def test_autostart_configures_and_activates(ros_context):
    node = Probe(context=ros_context)
    try:
        assert node.calls == ["configure", "activate"] and node.is_active
        node.trigger_deactivate()
        node.trigger_cleanup()
        assert node.calls[2:] == ["deactivate", "cleanup"] and node.lifecycle_state == "unconfigured"
    finally:
        node.destroy_node()


def test_no_autostart_waits_unconfigured(ros_context):
    node = Probe(context=ros_context, parameter_overrides=[Parameter("autostart", value=False)])
    try:
        assert node.calls == [] and node.lifecycle_state == "unconfigured"
    finally:
        node.destroy_node()


def test_descriptors_carry_description_and_range(ros_context):
    node = Probe(context=ros_context)
    try:
        d = node.describe_parameter("rate_hz")
        assert d.description == "publishing rate"
        assert d.floating_point_range[0].from_value == 0.1 and d.floating_point_range[0].to_value == 100.0
        assert node.describe_parameter("model_path").read_only
        assert "fast, slow" in node.describe_parameter("mode").additional_constraints
    finally:
        node.destroy_node()


@pytest.mark.parametrize("override, message", [
    (Parameter("rate_hz", value=500.0), "rate_hz: 500.0 is above the maximum 100.0"),
    (Parameter("mode", value="turbo"), "mode: 'turbo' is not one of fast, slow"),
    (Parameter("input_reliability", value="sometimes"), "input_reliability"),
    (Parameter("rate_hertz", value=5.0), "unknown parameter rate_hertz (known: "),
])
def test_invalid_start_up_value_is_a_clear_error(ros_context, override, message):
    with pytest.raises(ParameterError, match="node 'probe': invalid parameter") as e:
        Probe(context=ros_context, parameter_overrides=[override])
    assert message in str(e.value)


def test_invalid_change_is_rejected_with_reason(ros_context):
    node = Probe(context=ros_context)
    try:
        result = node.set_parameters([Parameter("rate_hz", value=-1.0)])[0]
        assert not result.successful and "rate_hz out of range" in result.reason
        result = node.set_parameters([Parameter("mode", value="turbo")])[0]
        assert not result.successful and "'turbo' is not one of fast, slow" in result.reason
        assert node.param("rate_hz") == 10.0
        assert node.set_parameters([Parameter("rate_hz", value=20.0)])[0].successful
        assert node.param("rate_hz") == 20.0
    finally:
        node.destroy_node()


class _DiagnosticsRig:
    """A node under test, a /diagnostics listener, one executor; ``mine()`` the node's statuses so far."""

    def __init__(self, ros_context, node):
        import rclpy.node
        self.node = node
        self.listener = rclpy.node.Node("diag_listener", context=ros_context)
        self.got = []
        self.listener.create_subscription(DiagnosticArray, "/diagnostics", self.got.append, 10)
        self.ex = SingleThreadedExecutor(context=ros_context)
        self.ex.add_node(node)
        self.ex.add_node(self.listener)

    def mine(self):
        return [s for m in self.got for s in m.status if s.name == self.node.get_fully_qualified_name()]

    def published(self):
        """The node's status after publish_diagnostics() now."""
        n = len(self.mine())
        self.node.publish_diagnostics()
        assert spin_until(self.ex, lambda: len(self.mine()) > n)
        return self.mine()[-1]

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()
        self.listener.destroy_node()


def test_reports_are_counted_and_published_as_diagnostics(ros_context):
    rig = _DiagnosticsRig(ros_context, Probe(context=ros_context))
    node = rig.node
    try:
        for _ in range(3):
            node.report("bad_encoding", "image encoding 'yuv422' unsupported")
        assert node.counters == {"bad_encoding": 3}
        status = rig.published()
        assert status.level == DiagnosticStatus.WARN
        values = {kv.key: kv.value for kv in status.values}
        assert values["bad_encoding"] == "3" and "yuv422" in values["last bad_encoding"]
    finally:
        rig.close()


class _Clock:
    def __init__(self, t=100.0):
        self.t = t

    def __call__(self):
        return self.t


def test_problem_window_forgets_old_problems_and_keeps_totals():
    clock = _Clock()
    w = ProblemWindow(10.0, clock)
    assert w.recent() == {} and w.totals == {}
    assert w.add("bad_image") == 1 and w.add("bad_image") == 2
    clock.t += 4.0
    w.add("no_camera_info")
    assert w.recent() == {"bad_image": 2, "no_camera_info": 1}
    clock.t += 6.0      # the bad images are 10 s old: out of the window; camera_info's 6 s
    assert w.recent() == {"no_camera_info": 1}
    clock.t += 4.0
    assert w.recent() == {} and w.totals == {"bad_image": 2, "no_camera_info": 1}
    w.add("bad_image")
    assert w.recent() == {"bad_image": 1} and w.totals["bad_image"] == 3
    w.window_s = 0.5    # a shorter window applies at once
    clock.t += 1.0
    assert w.recent() == {}


def test_diagnostics_warn_while_problems_are_recent_then_ok_with_totals(ros_context):
    rig = _DiagnosticsRig(ros_context, Probe(context=ros_context, parameter_overrides=[
        Parameter("diagnostics_window_s", value=0.5)]))
    node, mine = rig.node, rig.mine
    try:
        node.report("bad_encoding", "image encoding 'yuv422' unsupported")
        status = rig.published()
        assert status.level == DiagnosticStatus.WARN and "in the last 0.5 s" in status.message
        # the node's own 1 Hz diagnostics turn OK once the problem is older than the window
        assert spin_until(rig.ex, lambda: mine()[-1].level == DiagnosticStatus.OK, 10.0), mine()[-1]
        status = mine()[-1]
        values = {kv.key: kv.value for kv in status.values}
        assert values["bad_encoding"] == "1" and "none in the last 0.5 s" in status.message
        # a new problem: WARN again, the total goes on
        node.report("bad_encoding", "again")
        status = rig.published()
        assert status.level == DiagnosticStatus.WARN
        assert {kv.key: kv.value for kv in status.values}["bad_encoding"] == "2"
        # the window is a parameter, validated
        assert not node.set_parameters([Parameter("diagnostics_window_s", value=0.0)])[0].successful
        assert node.set_parameters([Parameter("diagnostics_window_s", value=30.0)])[0].successful
        assert node.problems.window_s == 30.0
    finally:
        rig.close()
