# Reproduce the bundled toy-world weights from scratch on a CPU (see hybridgen/toyworld/weights/*/README.md).
PYTHON ?= python
RUN ?= runs
THREADS ?= 2

.PHONY: toyworld-critic test lint

toyworld-critic:
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic --steps 2000 --threads $(THREADS) --no-resume
	$(PYTHON) benchmarks/toyworld_critic.py --critic $(RUN)/toyworld-critic --pairs 200 --threads $(THREADS) \
		--json $(RUN)/toyworld-critic/results.json
	$(PYTHON) -m hybridgen.toyworld.bundle critic $(RUN)/toyworld-critic --results $(RUN)/toyworld-critic/results.json

test:
	$(PYTHON) -m pytest -q

lint:
	ruff format --check . && ruff check .
