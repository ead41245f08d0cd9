# Reproduce the bundled toy-world weights from scratch on a CPU (see hybridgen/toyworld/weights/*/README.md).
PYTHON ?= python
RUN ?= runs
THREADS ?= 2

.PHONY: toyworld-critic toyworld-generator test lint

toyworld-critic:
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic --steps 2000 --threads $(THREADS) --no-resume
	$(PYTHON) benchmarks/toyworld_critic.py --critic $(RUN)/toyworld-critic --pairs 200 --threads $(THREADS) \
		--json $(RUN)/toyworld-critic/results.json
	$(PYTHON) -m hybridgen.toyworld.bundle critic $(RUN)/toyworld-critic --results $(RUN)/toyworld-critic/results.json

toyworld-generator:
	$(PYTHON) -m hybridgen.cli train-generator $(RUN)/toyworld-generator --threads $(THREADS) --no-resume
	$(PYTHON) benchmarks/toyworld_best_of_n.py --generator $(RUN)/toyworld-generator --critic toyworld \
		--threads $(THREADS) --json $(RUN)/toyworld-generator/results.json
	$(PYTHON) -m hybridgen.toyworld.bundle generator $(RUN)/toyworld-generator \
		--results $(RUN)/toyworld-generator/results.json

test:
	$(PYTHON) -m pytest -q

lint:
	ruff format --check . && ruff check .
