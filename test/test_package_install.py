"""The installed package, with the source tree off the path: it finds its configs, graphs
and shipped models. Two installs: ``pip install .`` into a fresh venv (setup.py) and the
colcon install tree (CMakeLists.txt, ``make build``)."""
import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOT_SHIPPED = (".git", ".venv", "build", "install", "log", "out", "data", ".hypothesis", "__pycache__",
               "*.egg-info", ".pytest_cache")
INSTALL = REPO / "install" / "hrc_perception"

# Printed by the child: where its hrc_perception modules and share folder came from.
WHERE = textwrap.dedent("""
    import json, sys
    import hrc_perception
    from hrc_perception import resources
    from hrc_perception.ros.graph import load_graph
    print(json.dumps({"share": str(resources.share_dir()), "graph_nodes": len(load_graph("cell").nodes),
                      "modules": sorted({str(getattr(m, "__file__", "") or "") for n, m in sys.modules.items()
                                         if n.startswith("hrc_perception")} - {""})}))
""")


def _clean_env(**extra) -> dict:
    """This process's environment without what points into the source tree."""
    drop = ("PYTHONPATH", "AMENT_PREFIX_PATH", "COVERAGE_PROCESS_START")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def _run(cmd, cwd: Path, env: dict, timeout_s: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s)
    assert done.returncode == 0, f"{cmd}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _outside_source_tree(where: dict, install_root: Path) -> None:
    assert Path(where["share"]).is_relative_to(install_root), where["share"]
    assert where["graph_nodes"] > 0
    assert where["modules"], "no hrc_perception module loaded"
    stray = [m for m in where["modules"] if Path(m).is_relative_to(REPO / "hrc_perception")]
    assert not stray, f"modules loaded from the source tree: {stray[:3]}"


@pytest.fixture(scope="module")
def pip_venv(tmp_path_factory) -> Path:
    """A fresh venv with hrc_perception pip-installed from a copy of the working tree. Its
    third-party packages come from this interpreter's site-packages (a .pth line: not a
    site dir, so the editable install of the source tree there is not loaded)."""
    root = tmp_path_factory.mktemp("pip_install")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, _clean_env())
    site_packages = next((venv / "lib").glob("python3*/site-packages"))
    (site_packages / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
          str(src)], root, _clean_env(PIP_NO_INDEX="1"))
    shutil.rmtree(src)   # nothing may refer to the copy it was installed from
    return venv


def test_pip_install_finds_its_files_and_runs_an_eval(pip_venv, tmp_path):
    python, env = str(pip_venv / "bin" / "python"), _clean_env()
    where = json.loads(_run([python, "-c", WHERE], tmp_path, env).stdout)
    _outside_source_tree(where, pip_venv)
    # the console script, from another directory: default config and weights come from the share folder
    out = tmp_path / "human_pose.json"
    _run([str(pip_venv / "bin" / "hrc-perception"), "eval", "human_pose", "--coco", "", "--synthetic-frames", "1",
          "--json", str(out)], tmp_path, env)
    result = json.loads(out.read_text())
    synthetic = result["synthetic"]
    assert Path(synthetic["config"]).is_relative_to(pip_venv / "share" / "hrc_perception"), synthetic["config"]
    assert synthetic["people"] >= 1 and synthetic["backends"]["spdh"]["mpjpe_mm"] < 150   # the shipped SPDH ran


def test_colcon_install_tree_configures_a_node_with_shipped_weights(tmp_path):
    sites = sorted((INSTALL / "lib").glob("python3*/site-packages"))
    if not sites:
        pytest.skip("no colcon install tree (make build)")
    pytest.importorskip("rclpy")
    ament = [str(INSTALL)] + [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(":") if p and
                              not Path(p).is_relative_to(INSTALL)]
    env = _clean_env(PYTHONPATH=str(sites[0]), AMENT_PREFIX_PATH=":".join(ament),
                     ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(30 + os.getpid() % 60))
    where = json.loads(_run([sys.executable, "-c", WHERE], tmp_path, env).stdout)
    _outside_source_tree(where, INSTALL)
    configure = textwrap.dedent("""
        import json
        import rclpy
        from hrc_perception.ros.bringup import start_graph
        from hrc_perception.ros.graph import load_graph
        rclpy.init()
        (node,) = start_graph(load_graph("cell"), only=["object_pose"])
        print(json.dumps({"state": node.lifecycle_state, "weights": str(node.weights_path),
                          "error": node.configure_error}))
        node.destroy_node()
        rclpy.try_shutdown()
    """)
    got = json.loads(_run([sys.executable, "-c", configure], tmp_path, env).stdout.strip().splitlines()[-1])
    assert got["state"] == "active", got
    assert Path(got["weights"]).is_relative_to(INSTALL / "share" / "hrc_perception" / "models"), got


def test_installed_node_executables_run_with_the_build_interpreter():
    """The installed node scripts name the Python the package was built for, not `python3` on PATH."""
    scripts = sorted((INSTALL / "lib" / "hrc_perception").glob("*"))
    if not scripts:
        pytest.skip("no colcon install tree (make build)")
    for script in scripts:
        interpreter = script.read_text().splitlines()[0].removeprefix("#!")
        assert interpreter == sys.executable and Path(interpreter).is_file(), (script, interpreter)
