#!/bin/sh
# Builds the calibration datasets with real DataLad/git-annex (several minutes on 2 cores),
# keeps the measurements in data/, and fits the model's constants from them.
# Needs: datalad (STRATA_DATALAD, default ./.venv/bin/datalad) and git-annex on PATH.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
export STRATA_DATALAD="${STRATA_DATALAD:-$root/.venv/bin/datalad}"
mkdir -p "$here/data"
cd "$root"
cargo test -p strata-plan --test datalad -- --ignored --nocapture --exact calibrate \
    | grep '^CALIBRATION ' > "$here/data/calibrate.txt"
cargo test -p strata-plan --test datalad -- --ignored --nocapture --exact calibration_shapes \
    | grep '^SHAPES ' > "$here/data/shapes.txt"
"$root/.venv/bin/python" "$here/fit.py" "$here/data/calibrate.txt" "$here/data/shapes.txt"
