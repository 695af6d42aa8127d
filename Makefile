# Every target creates the environment from uv.lock first (scripts/bootstrap is quick when it exists).
.PHONY: setup demo test bench chaos

setup:
	@scripts/bootstrap

demo: setup
	@.venv/bin/clarity demo

test: setup
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: setup
	@.venv/bin/python bench/intake_bench.py

# The fault, fuzz and load suite at full size; it writes docs/chaos-report.md.
# (`make test` runs the same tests in a bounded form.)
chaos: setup
	@CLARITY_CHAOS_SCALE=full CLARITY_CHAOS_REPORT=docs/chaos-report.md \
		.venv/bin/python -m pytest -m chaos $(PYTEST_ARGS)
