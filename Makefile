# Reproduce the bundled toy-world weights from scratch on a CPU (see hybridgen/toyworld/weights/*/README.md).
PYTHON ?= python
RUN ?= runs
THREADS ?= 2

.PHONY: toyworld-critic toyworld-generator test lint

# The critic, in two stages. First 2000 steps, then resumed to 4000 (the cosine schedule is recomputed over 4000 steps,
# so the learning rate restarts at about half its peak and decays again): 44 minutes at 2 threads on a 2-core AMD
# EPYC VM (2026-12-02), 140 at 1 thread on a slower, shared one; this was the bundled critic until the sixth session
# of 2026-12-02. Then 4000 more steps started from it (a fresh warm-up and cosine, fresh clips from seed 100000):
# 47 minutes at 2 threads, which lifted the validation pairs from 0.885 to 0.935 (BENCHMARKS.md), so the whole
# training is about 90 minutes, twice the issue's 45-minute budget. Then its expected-error head (about 6 minutes),
# which the violation benchmark's relative scoring needs; the benchmark then takes about 25 minutes.
# Peak lr 1e-3 (train-critic's default again since 2026-12-02) is spelled out: it is part of the recipe; 2e-3 gave
# one better and one far worse run (BENCHMARKS.md).
toyworld-critic:
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic-4000 --steps 2000 --lr 1e-3 --threads $(THREADS) --no-resume
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic-4000 --steps 4000 --lr 1e-3 --threads $(THREADS)
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic --init $(RUN)/toyworld-critic-4000 --steps 4000 \
		--lr 1e-3 --seed 100000 --eval-every 1000 --checkpoint-every 500 --threads $(THREADS) --no-resume
	$(PYTHON) -m hybridgen.cli calibrate-critic $(RUN)/toyworld-critic -o $(RUN)/toyworld-critic --threads $(THREADS)
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
