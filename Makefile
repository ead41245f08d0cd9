# Reproduce the bundled toy-world weights from scratch on a CPU (see hybridgen/toyworld/weights/*/README.md).
PYTHON ?= python
RUN ?= runs
THREADS ?= 2

.PHONY: toyworld-critic toyworld-generator test test-fast lint

# The critic, in three stages, each started from the one before (its weights; a fresh warm-up and cosine from peak
# lr 1e-3; fresh clips). Stage 1: 2000 steps from random weights, then resumed to 4000 (the cosine schedule is
# recomputed over 4000 steps, so the learning rate restarts at about half its peak and decays again): 44 minutes at
# 2 threads on a 2-core AMD EPYC VM (2026-12-02). Stage 2: 4000 more steps on clips from seed 100000, 47 minutes,
# which lifted the validation pairs from 0.885 to 0.935. Stage 3: 4000 more on clips from seed 200000, 37 minutes,
# to 0.948 (BENCHMARKS.md). The whole training is about 130 minutes at 2 threads, three times the issue's
# 45-minute budget. Then its expected-error head (about 5 minutes), which the violation benchmark's relative
# scoring needs; the benchmark then takes about 22 minutes.
# Peak lr 1e-3 (train-critic's default) is spelled out: it is part of the recipe; 2e-3 gave one better and one far
# worse run (BENCHMARKS.md).
toyworld-critic:
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic-4000 --steps 2000 --lr 1e-3 --threads $(THREADS) --no-resume
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic-4000 --steps 4000 --lr 1e-3 --threads $(THREADS)
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic-8000 --init $(RUN)/toyworld-critic-4000 --steps 4000 \
		--lr 1e-3 --seed 100000 --eval-every 1000 --checkpoint-every 500 --threads $(THREADS) --no-resume
	$(PYTHON) -m hybridgen.cli train-critic $(RUN)/toyworld-critic --init $(RUN)/toyworld-critic-8000 --steps 4000 \
		--lr 1e-3 --seed 200000 --eval-every 1000 --checkpoint-every 500 --threads $(THREADS) --no-resume
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

test-fast:  # the edit-run loop: everything but the tests marked slow
	$(PYTHON) -m pytest -q -m "not slow"

lint:
	ruff format --check . && ruff check .
