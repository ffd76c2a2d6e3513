"""The base of every hrc_perception node: parameters, QoS, lifecycle, error reporting.

A node class lists its parameters as ``ParamSpec``s. The base declares each with
a descriptor (description, range or choices, read-only), validates the start-up
values (an invalid value raises ``ParameterError`` naming node, parameter and
reason, before anything runs) and every later change (rejected with the reason).

Nodes are lifecycle nodes: subclasses put their work in ``on_configure_hook``
(create publishers, load models), ``on_activate_hook``, ``on_deactivate_hook`` and
``on_cleanup_hook`` (release resources). With the ``autostart`` parameter (default
true) a node configures and activates itself right after construction.

Model nodes set ``MODEL_ATTR`` (the attribute holding the model) and override
``load_model``; configure calls ``load_model_or_fail``. The base frees the model
(``free_model``) on deactivate and cleanup and loads it again on activate: every model
node here reloads in well under a second (measured in each node's module doc); what is
slow to load and not a network (robot_pose's URDF meshes) is kept until cleanup. A
callback that runs the model holds ``model_lock`` (freeing waits for it: transitions
triggered from another thread than the executor's).

Bad input never kills a node: ``report(kind, message)`` counts it per kind, logs at
most one line per kind every ``error_log_period_s``, and the counters appear in
the node's ``diagnostic_msgs`` status on ``/diagnostics`` (1 Hz). The status's level
is over a window (:class:`ProblemWindow`), as diagnostic_updater's tasks report: a
problem counted in the last ``diagnostics_window_s`` seconds gives WARN, older ones
are OK again; the totals since start stay in the values.
"""
from __future__ import annotations

import math
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data)

from hrc_perception.ros.convert import CameraInfoError, ImageConversionError

CAMERA_COLOR_TOPIC = "camera/color/image_raw"
CAMERA_DEPTH_TOPIC = "camera/depth/image_raw"
CAMERA_INFO_TOPIC = "camera/color/camera_info"

ERROR_LOG_PERIOD_S = 5.0
DIAGNOSTICS_WINDOW_S = 10.0


class ParameterError(ValueError):
    """A parameter value a node cannot work with (raised at start-up)."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: its type is the default's type (bool, int, float, str, list of str).

    min_value / max_value: inclusive range of an int or float. choices: allowed strings.
    read_only: fixed after start-up (model paths, sources).
    """
    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        d = ParameterDescriptor(name=self.name, description=self.description, read_only=self.read_only)
        d.type = _parameter_type(self.default)
        if isinstance(self.default, bool):
            pass
        elif isinstance(self.default, int) and (self.min_value is not None or self.max_value is not None):
            d.integer_range = [IntegerRange(from_value=int(self.min_value if self.min_value is not None else -2**31),
                                            to_value=int(self.max_value if self.max_value is not None else 2**31 - 1),
                                            step=0)]
        elif isinstance(self.default, float) and (self.min_value is not None or self.max_value is not None):
            d.floating_point_range = [FloatingPointRange(
                from_value=float(self.min_value if self.min_value is not None else -1e308),
                to_value=float(self.max_value if self.max_value is not None else 1e308), step=0.0)]
        if self.choices:
            d.additional_constraints = "one of: " + ", ".join(self.choices)
        return d

    def check(self, value: Any) -> str | None:
        """Why value is not acceptable, or None."""
        want = type(self.default)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if want is list:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                return f"expected a list of strings, got {value!r}"
            return None
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            return f"expected {want.__name__}, got {type(value).__name__} {value!r}"
        if want is float and not math.isfinite(value):
            return f"{value} is not a finite number"
        if self.min_value is not None and value < self.min_value:
            return f"{value} is below the minimum {self.min_value}"
        if self.max_value is not None and value > self.max_value:
            return f"{value} is above the maximum {self.max_value}"
        if self.choices and value not in self.choices:
            return f"{value!r} is not one of {', '.join(self.choices)}"
        return None


class ProblemWindow:
    """Problems counted per kind: the totals since start, and those of the last ``window_s`` seconds.

    ``clock()``: seconds, monotonic (injectable for tests). ``totals``: kind -> count since
    start (never reset). A problem counted at t is recent while now - t < window_s.
    """

    def __init__(self, window_s: float = DIAGNOSTICS_WINDOW_S, clock: Callable[[], float] = time.monotonic):
        self.window_s = float(window_s)
        self.totals: dict[str, int] = {}
        self._clock = clock
        self._times: dict[str, deque[float]] = {}

    def add(self, kind: str) -> int:
        """Count one problem of this kind now; returns its total."""
        now = self._clock()
        self.totals[kind] = self.totals.get(kind, 0) + 1
        times = self._times.setdefault(kind, deque())
        times.append(now)
        self._forget(times, now)
        return self.totals[kind]

    def recent(self) -> dict[str, int]:
        """kind -> problems counted in the last window_s seconds (kinds with none left out)."""
        now = self._clock()
        out = {}
        for kind, times in self._times.items():
            self._forget(times, now)
            if times:
                out[kind] = len(times)
        return out

    def _forget(self, times: deque[float], now: float) -> None:
        while times and now - times[0] >= self.window_s:
            times.popleft()


def _parameter_type(default: Any) -> int:
    if isinstance(default, bool):
        return ParameterType.PARAMETER_BOOL
    if isinstance(default, int):
        return ParameterType.PARAMETER_INTEGER
    if isinstance(default, float):
        return ParameterType.PARAMETER_DOUBLE
    if isinstance(default, str):
        return ParameterType.PARAMETER_STRING
    if isinstance(default, list):
        return ParameterType.PARAMETER_STRING_ARRAY
    raise TypeError(f"unsupported parameter default {default!r}")


COMMON_PARAMS = (
    ParamSpec("autostart", True, "configure and activate right after start-up", read_only=True),
    ParamSpec("input_reliability", "best_effort", "reliability of the camera-input subscriptions",
              choices=("best_effort", "reliable"), read_only=True),
    ParamSpec("input_queue_depth", 5, "queue depth of the camera-input subscriptions", min_value=1, max_value=100,
              read_only=True),
    ParamSpec("cpu_threads", 0, "threads of the node's networks (torch, onnxruntime, openvino; 0 = the "
              "library's default, every core): 1 where many nodes share few cores (two threads waiting on "
              "each other on busy cores run slower than one)", min_value=0, max_value=256, read_only=True),
    ParamSpec("error_log_period_s", ERROR_LOG_PERIOD_S, "at most one log line per kind of error this often",
              min_value=0.0, max_value=3600.0),
    ParamSpec("diagnostics_window_s", DIAGNOSTICS_WINDOW_S, "diagnostics WARN while an input problem was counted "
              "in the last this many seconds; OK again after (the totals stay in the values)",
              min_value=0.1, max_value=86400.0),
)


class HrcNode(LifecycleNode):
    """Base class; subclasses set PARAMS and override the *_hook methods."""

    PARAMS: tuple[ParamSpec, ...] = ()
    #: a model node's model attribute (None while not loaded); '' = not a model node
    MODEL_ATTR = ""

    def __init__(self, node_name: str, **kwargs):
        super().__init__(node_name, **kwargs)
        self._specs = {s.name: s for s in COMMON_PARAMS + tuple(self.PARAMS)}
        self.lifecycle_state = "unconfigured"
        self.problems = ProblemWindow()
        self.model_lock = threading.RLock()    # held while a model runs; freeing it waits for that
        self.counters: dict[str, int] = self.problems.totals     # kind -> count since start
        self._last_log: dict[str, float] = {}
        self._last_message: dict[str, str] = {}
        problems = []
        for spec in self._specs.values():
            try:
                self.declare_parameter(spec.name, spec.default, spec.descriptor())
            except (InvalidParameterValueException, InvalidParameterTypeException) as e:
                # rclpy checks the descriptor's range and type itself; say why in our words
                value = self._parameter_overrides[spec.name].value if spec.name in self._parameter_overrides \
                    else None
                problems.append(f"{spec.name}: {spec.check(value) or e}")
                continue
            why = spec.check(self.get_parameter(spec.name).value)
            if why:
                problems.append(f"{spec.name}: {why}")
        # rclpy keeps overrides of undeclared names silently: a typo must not go unnoticed
        unknown = sorted(name for name in self._parameter_overrides
                         if name not in self._specs and not self.has_parameter(name)
                         and not name.startswith("qos_overrides."))
        if unknown:
            problems.append(f"unknown parameter {', '.join(unknown)} (known: {', '.join(sorted(self._specs))})")
        if not problems:
            why = self.check_parameters({n: self.param(n) for n in self._specs})
            if why:
                problems.append(why)
        if problems:
            raise ParameterError(f"node '{self.get_name()}': invalid parameter " + "; ".join(problems))
        self.problems.window_s = self.param("diagnostics_window_s")
        self.add_on_set_parameters_callback(self._validate_set)
        self.add_post_set_parameters_callback(self._after_set)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(1.0, self.publish_diagnostics)
        if self.param("autostart"):
            self.trigger_configure()
            if self.lifecycle_state == "inactive":
                self.trigger_activate()

    # -- parameters -------------------------------------------------------------
    def param(self, name: str) -> Any:
        value = self.get_parameter(name).value
        if isinstance(self._specs[name].default, float) and isinstance(value, int):
            return float(value)
        return value

    def _validate_set(self, params) -> SetParametersResult:
        for p in params:
            spec = self._specs.get(p.name)
            if spec is None:
                continue
            why = spec.check(p.value)
            if why:
                return SetParametersResult(successful=False, reason=f"{p.name}: {why}")
        values = {n: self.param(n) for n in self._specs} | {p.name: p.value for p in params if p.name in self._specs}
        why = self.check_parameters(values)
        if why:
            return SetParametersResult(successful=False, reason=why)
        return SetParametersResult(successful=True)

    def _after_set(self, params) -> None:
        names = [p.name for p in params if p.name in self._specs]
        if "diagnostics_window_s" in names:
            self.problems.window_s = self.param("diagnostics_window_s")
        if names:
            self.on_parameters_set(names)

    def check_parameters(self, values: dict[str, Any]) -> str | None:
        """Why a subclass cannot work with these values together (every parameter's value
        after a set), or None; a set it refuses changes nothing."""
        return None

    def on_parameters_set(self, names: list[str]) -> None:
        """Parameters ``names`` have new values: apply them (a subclass hook)."""

    # -- QoS ----------------------------------------------------------------------
    def input_qos(self) -> QoSProfile:
        """Camera inputs: sensor-data QoS with reliability and depth from parameters."""
        qos = QoSProfile(depth=self.param("input_queue_depth"), history=HistoryPolicy.KEEP_LAST,
                         durability=qos_profile_sensor_data.durability)
        qos.reliability = (ReliabilityPolicy.RELIABLE if self.param("input_reliability") == "reliable"
                           else ReliabilityPolicy.BEST_EFFORT)
        return qos

    @staticmethod
    def output_qos() -> QoSProfile:
        """Results: reliable, depth 10."""
        return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

    @staticmethod
    def latched_qos() -> QoSProfile:
        """Static metadata: reliable, transient local, depth 1."""
        return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)

    # -- errors and diagnostics ---------------------------------------------------
    def report(self, kind: str, message: str) -> None:
        """Count one problem of this kind; log it unless one was logged recently."""
        self.problems.add(kind)
        self._last_message[kind] = message
        now = time.monotonic()
        if now - self._last_log.get(kind, -1e9) >= self.param("error_log_period_s"):
            self._last_log[kind] = now
            self.get_logger().warning(f"{kind}: {message} (x{self.counters[kind]} so far)")

    def converted(self, convert, msg, kind: str, topic: str):
        """``convert(msg)`` (a :mod:`~hrc_perception.ros.convert` reader), or None after
        ``report(kind, ...)`` when the message cannot be converted."""
        try:
            return convert(msg)
        except (ImageConversionError, CameraInfoError) as e:
            self.report(kind, f"{topic}: {e}")
            return None

    def rgbd(self, color, depth, camera_info, what: str):
        """(rgb [H, W, 3] uint8, depth_m [H, W], K [3, 3]) from a colour Image, an aligned
        depth Image and a CameraInfo, or None after ``report()`` of why: ``no_images`` (a
        message is None; ``what`` names the consumer's input, e.g. "this TrackArray"),
        ``no_camera_info``, ``bad_camera_info``, ``bad_image``, ``bad_depth``, ``size_mismatch``."""
        from hrc_perception.ros.convert import camera_info_to_K, depth_to_meters, image_to_rgb
        if color is None or depth is None:
            self.report("no_images", f"no {CAMERA_COLOR_TOPIC if color is None else CAMERA_DEPTH_TOPIC} image with "
                        f"the stamp of {what} (kept: the last frames_kept images)")
            return None
        if camera_info is None:
            self.report("no_camera_info", f"no {CAMERA_INFO_TOPIC} received yet")
            return None
        intrinsics = self.converted(camera_info_to_K, camera_info, "bad_camera_info", CAMERA_INFO_TOPIC)
        rgb = None if intrinsics is None else self.converted(image_to_rgb, color, "bad_image", CAMERA_COLOR_TOPIC)
        depth_m = None if rgb is None else self.converted(depth_to_meters, depth, "bad_depth", CAMERA_DEPTH_TOPIC)
        if depth_m is None:
            return None
        K, w, h = intrinsics
        if rgb.shape[:2] != depth_m.shape or depth_m.shape != (h, w):
            self.report("size_mismatch", f"colour {rgb.shape[1]}x{rgb.shape[0]}, depth {depth_m.shape[1]}x"
                        f"{depth_m.shape[0]}, camera_info {w}x{h}: they must agree (depth aligned to colour)")
            return None
        return rgb, depth_m, K

    def depth_and_K(self, depth, camera_info):
        """(depth_m [H, W], K [3, 3]) from a depth Image and its CameraInfo, or None after
        ``report()`` of why: ``no_camera_info``, ``bad_camera_info``, ``bad_depth``,
        ``size_mismatch``."""
        from hrc_perception.ros.convert import camera_info_to_K, depth_to_meters
        if camera_info is None:
            self.report("no_camera_info", f"no {CAMERA_INFO_TOPIC} received yet")
            return None
        intrinsics = self.converted(camera_info_to_K, camera_info, "bad_camera_info", CAMERA_INFO_TOPIC)
        depth_m = None if intrinsics is None else self.converted(depth_to_meters, depth, "bad_depth",
                                                                 CAMERA_DEPTH_TOPIC)
        if depth_m is None:
            return None
        K, w, h = intrinsics
        if depth_m.shape != (h, w):
            self.report("size_mismatch", f"depth {depth_m.shape[1]}x{depth_m.shape[0]}, camera_info {w}x{h}: "
                        "they must agree (depth aligned to colour)")
            return None
        return depth_m, K

    def publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name=self.get_fully_qualified_name(), hardware_id="hrc_perception")
        state = self.lifecycle_state
        recent, window_s = self.problems.recent(), self.problems.window_s
        if recent:
            status.level = DiagnosticStatus.WARN
            worst = max(recent, key=recent.get)
            status.message = f"{state}; {sum(recent.values())} input problems in the last {window_s:g} s, most: {worst}"
        else:
            status.level = DiagnosticStatus.OK if state == "active" else DiagnosticStatus.WARN
            status.message = state
            if self.counters:
                status.message += f"; {sum(self.counters.values())} input problems, none in the last {window_s:g} s"
        check = self.diagnostic_check()
        if check is not None:
            status.level = max(status.level, check[0])
            status.message += f"; {check[1]}"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in sorted(self.counters.items())]
        status.values += [KeyValue(key=f"last {k}", value=m) for k, m in sorted(self._last_message.items())]
        status.values += [KeyValue(key=f"{k} in the last {window_s:g} s", value=str(n))
                          for k, n in sorted(recent.items())]
        status.values += [KeyValue(key=k, value=v) for k, v in self.diagnostic_values().items()]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(msg)

    def diagnostic_values(self) -> dict[str, str]:
        """Extra key/values for the diagnostics of a subclass (counts that are not problems)."""
        return {}

    def diagnostic_check(self) -> tuple[int, str] | None:
        """A failed check of a subclass: (DiagnosticStatus level, one line), or None. The
        status takes the worse of its level and the input-problem level."""
        return None

    # -- lifecycle ------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        return self._run_hook("configure", self.on_configure_hook, "inactive")

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        result = self._run_hook("activate", self._activate, "active")
        return super().on_activate(state) if result == TransitionCallbackReturn.SUCCESS else result

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        result = self._run_hook("deactivate", self._deactivate, "inactive")
        return super().on_deactivate(state) if result == TransitionCallbackReturn.SUCCESS else result

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        return self._run_hook("cleanup", self._cleanup, "unconfigured")

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        return self._run_hook("shutdown", self._cleanup, "finalized")

    def _activate(self) -> None:
        if self.MODEL_ATTR and getattr(self, self.MODEL_ATTR) is None:    # freed on deactivate
            self.load_model_or_fail()
        self.on_activate_hook()

    def _deactivate(self) -> None:
        self.on_deactivate_hook()
        if self.MODEL_ATTR:
            with self.model_lock:
                self.free_model()

    def _cleanup(self) -> None:
        self.on_cleanup_hook()
        if self.MODEL_ATTR:
            with self.model_lock:
                self.free_model()

    def _run_hook(self, name: str, hook, next_state: str) -> TransitionCallbackReturn:
        try:
            hook()
        except Exception as e:   # a failed transition is reported, not fatal to the process
            self.get_logger().error(f"{name} failed: {type(e).__name__}: {e}")
            return TransitionCallbackReturn.FAILURE
        self.lifecycle_state = next_state
        return TransitionCallbackReturn.SUCCESS

    @property
    def is_active(self) -> bool:
        return self.lifecycle_state == "active"

    def before_exit(self) -> None:
        """The process is about to exit (Ctrl-C, SIGTERM, shutdown): the last messages."""

    def guarded(self, callback, kind: str = "callback_error"):
        """callback wrapped so that no exception escapes it into the executor: one is
        counted and logged as ``kind`` (a subscription callback that raised would stop the
        node's spin)."""
        def run(*args):
            try:
                return callback(*args)
            except Exception as e:  # noqa: BLE001 - bad input never kills a node
                self.report(kind, f"{getattr(callback, '__name__', 'callback')}: {type(e).__name__}: {e}")
                return None
        return run

    # -- models ---------------------------------------------------------------------
    def load_model(self) -> None:
        """A model node's loader: sets the MODEL_ATTR attribute, raises why it cannot."""
        raise NotImplementedError(f"{type(self).__name__} sets MODEL_ATTR but has no load_model")

    def free_model(self) -> None:
        """Drop the model (a node whose model holds more, e.g. a backend to close, extends this)."""
        setattr(self, self.MODEL_ATTR, None)
        free_model_memory()

    def load_model_or_fail(self, load=None) -> None:
        """``load()`` (default ``load_model``); when it raises, the model is None,
        ``configure_error`` says why in one line, and the exception goes on: the transition
        fails (one log line), the node stays up."""
        from hrc_perception.ros.weights import load_error_text
        self.configure_error = None
        if self.param("cpu_threads") > 0:
            import torch
            torch.set_num_threads(self.param("cpu_threads"))     # the engines take torch's count
        try:
            (load or self.load_model)()
        except Exception as e:
            self.configure_error = load_error_text(e)
            setattr(self, self.MODEL_ATTR, None)
            raise

    def on_configure_hook(self) -> None:
        """Create publishers and subscriptions, load models."""

    def on_activate_hook(self) -> None:
        """Start working (timers)."""

    def on_deactivate_hook(self) -> None:
        """Stop working; keep what configure made."""

    def on_cleanup_hook(self) -> None:
        """Release what configure made."""


def free_model_memory() -> None:
    """After a model node dropped its model: give torch's cached CUDA memory back (nothing
    without torch or CUDA)."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_node(node_class, args: list[str] | None = None) -> int:
    """Entry point of a node executable: init, construct, spin until Ctrl-C.

    Returns the exit status: 0 after Ctrl-C / shutdown, 2 for an invalid parameter
    (one log line naming node, parameter and reason).
    """
    import rclpy
    import rclpy.logging
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    from rclpy.signals import SignalHandlerOptions

    # Our own SIGINT/SIGTERM handling (KeyboardInterrupt): rclpy's would shut the context
    # down first, and a node could not publish its last message (``before_exit``).
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    previous_term = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    node = None
    try:
        try:
            node = node_class()
        except ParameterError as e:
            rclpy.logging.get_logger(node_class.__name__).error(" ".join(str(e).split()))
            return 2
        if not rclpy.ok():   # Ctrl-C while starting up (a model or the synthetic cell takes seconds)
            return 0
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            executor.spin()
        finally:
            executor.shutdown()
        return 0
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    except Exception:
        if not rclpy.ok():   # an error caused by Ctrl-C shutting the context down under a callback
            return 0
        raise
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        if node is not None:
            if rclpy.ok():
                try:
                    node.before_exit()
                except Exception as e:  # noqa: BLE001 - exiting anyway
                    node.get_logger().error(f"before_exit failed: {type(e).__name__}: {e}")
            node.destroy_node()
        rclpy.try_shutdown()


def _raise_keyboard_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
