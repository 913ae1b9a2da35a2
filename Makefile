# Citas IVR: developer shortcuts. The real work is in scripts/setup.sh and `ivr`.

VENV_IVR := .venv/bin/ivr

.PHONY: test bench bench-quick

test:  ## ruff, mypy, unit and end-to-end tests (what CI runs)
	bash scripts/setup.sh test

# Capacity and reaction time (docs/PERFORMANCE.md); not part of `make test`.
# Uses its own sandbox (CITAS_INSTANCE=bench, CITAS_PORT_OFFSET=3000), about 12 min.
# Extra options: make bench BENCH_ARGS="--steps 5,10,20 --hold 30"
bench: $(VENV_IVR)
	$(VENV_IVR) bench $(BENCH_ARGS)

bench-quick: $(VENV_IVR)  ## the same, fewer and smaller steps (about 4 min)
	$(VENV_IVR) bench --quick $(BENCH_ARGS)

# On a fresh machine the benchmark's first step is the install (apt packages, .venv).
$(VENV_IVR):
	bash scripts/setup.sh install
