#!/usr/bin/env bash
# Every GPU check of the project in one go, for a lent GPU machine whose Python already holds torch,
# jax (CUDA), numpy, pytest and nvidia-ml-py but not computelease's other dependencies:
#
#   bash benchmarks/gpu_session.sh [WHEELS_DIR]      # results in $OUT (else ./gpu-session)
#   MODE=quick BENCH=0 bash benchmarks/gpu_session.sh # shorter: quick probe, no Monte Carlo benchmark
#
# WHEELS_DIR (default .whl) holds CPython 3.12 manylinux wheels of the rest, made where PyPI answers
# (the versions of a working .venv: `.venv/bin/pip freeze`):
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64 \
#     -d .whl alembic annotated-types argon2-cffi argon2-cffi-bindings babel cffi et_xmlfile fastapi \
#     greenlet itsdangerous Mako numpy-financial openpyxl opentelemetry-api plotly pydantic \
#     pydantic-settings pydantic_core python-dotenv python-multipart pyxirr SQLAlchemy starlette \
#     typing-inspection tzdata uvicorn httpx2 httpcore2 truststore anyio typing_extensions pycparser \
#     typer rich annotated-doc narwhals
# (numpy, torch, jax, pytest, hypothesis, pyyaml, jinja2 and nvidia-ml-py are the image's own). In order of
# importance, each step's log goes to $OUT so that a run cut short still reports what it did:
#   1. the acceptance probe's device check (issue 8): yardsticks, probe --standard, gpu pytest tests;
#   2. the probe CLI itself (--quick --json) and the agent's NVML sample (issue 5's NVML backend);
#   3. the Monte Carlo backend tests on the GPU (torch and JAX against numpy, issue 7);
#   4. bench_montecarlo.py on torch and JAX (GPU), and numpy on every core of the machine.
set -u
WHEELS=${1:-.whl}
OUT=${OUT:-$PWD/gpu-session}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD/src
else
  export PYTHONPATH=$PWD/src
fi
cli() { python3 -c 'import sys; from computelease.cli import run; sys.argv[0] = "computelease"; run()' "$@"; }
step() { echo; echo "##### $* ($(date -u +%H:%M:%S))"; }

step "1 device check" | tee "$OUT/1-device-check.log"
python3 benchmarks/probe_device_check.py --mode "${MODE:-standard}" --out "$OUT" 2>&1 | tee -a "$OUT/1-device-check.log"
echo "device check exit ${PIPESTATUS[0]}" | tee -a "$OUT/1-device-check.log"

{
  step "2 probe CLI --quick"
  cli probe --quick --json "$OUT/probe-cli-quick.json"
  echo "probe exit $?"
  step "2 agent sample --backend nvml"
  cli agent sample --backend nvml
  echo "agent sample exit $?"
} 2>&1 | tee "$OUT/2-cli.log"

{
  step "3 Monte Carlo backend tests"
  python3 -m pytest -q -rs -p no:cacheprovider tests/economics/test_montecarlo_backends.py
  echo "pytest exit $?"
} 2>&1 | tee "$OUT/3-mc-tests.log"

[ "${BENCH:-1}" = 0 ] && exit 0
{
  for args in "--backend torch" "--backend torch --chunk 1000000" "--backend jax" \
    "--backend numpy --workers $(nproc)"; do
    step "4 bench_montecarlo.py $args --runs 5"
    python3 benchmarks/bench_montecarlo.py $args --runs 5
  done
  nvidia-smi --query-gpu=name,driver_version,temperature.gpu,power.draw,clocks.sm --format=csv
} 2>&1 | tee "$OUT/4-mc-bench.log"
