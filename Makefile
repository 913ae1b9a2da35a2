# Citas IVR: developer shortcuts. The real work is in scripts/setup.sh and `ivr`.

VENV_IVR := .venv/bin/ivr

.PHONY: test bench bench-quick bench-report compose-up compose-down compose-test

test:  ## ruff, mypy, unit and end-to-end tests (what CI runs)
	bash scripts/setup.sh test

# Capacity and reaction time (docs/PERFORMANCE.md); not part of `make test`.
# One run, every variant: plain dialplan, ARI smoke and citas with 1 and N controllers
# (N = cores), citas on SQLite and PostgreSQL (a throwaway server in the results dir),
# each line up its own ladder to its first failed step; about 35 min on 2 cores.
# Uses its own sandbox (CITAS_INSTANCE=bench, CITAS_PORT_OFFSET=3000). Then
# `make bench-report` prints the markdown for docs/PERFORMANCE.md from the newest run.
# Extra options: make bench BENCH_ARGS="--profile" or BENCH_ARGS="--lines citas --db postgresql"
bench: $(VENV_IVR)
	$(VENV_IVR) bench $(BENCH_ARGS)

bench-quick: $(VENV_IVR)  ## steps 10,40, N controllers, SQLite (about 9 min)
	$(VENV_IVR) bench --quick $(BENCH_ARGS)

bench-report: $(VENV_IVR)  ## the markdown tables of the newest bench-results/<time>/
	$(VENV_IVR) bench report "$$(ls -d bench-results/*/ | sort | tail -1)"

# On a fresh machine the benchmark's first step is the install (apt packages, .venv).
$(VENV_IVR):
	bash scripts/setup.sh install

# The 2-node cluster in containers, built on this machine with no registry
# (docker/README.md): base images from debootstrap roots, the images, then
# docker-compose up; CITAS_INSTANCE and CITAS_PORT_OFFSET as for the sandbox.
compose-up: $(VENV_IVR)
	$(VENV_IVR) compose up

compose-down: $(VENV_IVR)
	$(VENV_IVR) compose down

compose-test: $(VENV_IVR)  ## the stack answers a sipp call (tests/e2e/test_compose.py)
	.venv/bin/python -m pytest -p no:cacheprovider -m compose tests/e2e
