# hrc_perception: `make test` (what CI runs), `make bench`, `make setup`, `make build`.
SHELL := /bin/bash
VENV ?= .venv
INSTALLED := $(VENV)/.installed
BUILT := install/hrc_perception/.built
ENV := source scripts/env.sh &&

.PHONY: setup build test fuzz bench demo clean

setup: $(INSTALLED) $(BUILT)

build: $(BUILT)

$(INSTALLED): requirements.txt requirements-mediapipe.txt requirements-ros-wheels.txt requirements-torch.txt setup.py scripts/system_deps.sh scripts/setup_venv.sh
	scripts/system_deps.sh
	VENV=$(VENV) scripts/setup_venv.sh
	touch $@

$(BUILT): $(INSTALLED) package.xml CMakeLists.txt $(wildcard msg/*.msg)
	scripts/build.sh
	touch $@

test: setup
	$(ENV) python -m pytest -q test

# the safety monitor's property tests as a long random campaign (CI runs a bounded set)
fuzz: setup
	$(ENV) HRC_FUZZ=1 python -m pytest -q -p no:cacheprovider test/test_safety_properties.py \
		test/test_ros_safety_properties.py --hypothesis-show-statistics

demo: setup
	$(ENV) python -m hrc_perception.evaluation.demo --out out/demo --duration 10

bench: setup
	$(ENV) hrc-perception bench synth --json benchmarks/results/synth.json
	$(ENV) hrc-perception bench ros --json benchmarks/results/ros_transport.json
	$(ENV) hrc-perception bench segmentation --json benchmarks/results/segmentation.json
	$(ENV) hrc-perception bench tracking --json benchmarks/results/tracking.json
	$(ENV) hrc-perception bench object_pose --json benchmarks/results/object_pose.json
	$(ENV) hrc-perception bench robot_pose --json benchmarks/results/robot_pose.json
	$(ENV) hrc-perception bench human_pose --json benchmarks/results/human_pose.json
	$(ENV) hrc-perception bench safety --json benchmarks/results/safety.json
	$(ENV) hrc-perception bench engines --json benchmarks/results/engines.json

clean:
	rm -rf $(VENV) build install log out
