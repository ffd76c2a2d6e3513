"""Node base: parameter descriptors and validation, lifecycle with autostart, error counters, diagnostics."""
import pytest
from conftest import spin_until
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter

from hrc_perception.ros.node_base import HrcNode, ParameterError, ParamSpec


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


def test_reports_are_counted_and_published_as_diagnostics(ros_context):
    node = Probe(context=ros_context)
    import rclpy.node
    sub_node = rclpy.node.Node("diag_listener", context=ros_context)
    got = []
    sub_node.create_subscription(DiagnosticArray, "/diagnostics", got.append, 10)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(sub_node)
    try:
        for _ in range(3):
            node.report("bad_encoding", "image encoding 'yuv422' unsupported")
        assert node.counters == {"bad_encoding": 3}
        node.publish_diagnostics()

        def mine():
            return [s for m in got for s in m.status if s.name == node.get_fully_qualified_name()]
        assert spin_until(ex, lambda: bool(mine()))
        status = mine()[-1]
        assert status.level == DiagnosticStatus.WARN
        values = {kv.key: kv.value for kv in status.values}
        assert values["bad_encoding"] == "3" and "yuv422" in values["last bad_encoding"]
    finally:
        ex.shutdown()
        node.destroy_node()
        sub_node.destroy_node()
