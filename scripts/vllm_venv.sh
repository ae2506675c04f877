#!/usr/bin/env bash
# Build (once) the cached virtualenv with vllm==VERSION that judges our command lines:
#   scripts/vllm_venv.sh 0.32.0     -> ${MODELFLEET_CACHE:-~/.cache/modelfleet}/vllm/0.32.0/
# Keyed by version, beside the Kubernetes build cache; reused when complete (a stamp file
# marks that), rebuilt from scratch when an earlier build was interrupted. vllm pulls torch
# and its CUDA wheels (~8 GB): minutes on a cold pip cache. VLLM_TARGET_DEVICE=cpu lets the
# parser load without a GPU. Progress goes to stderr; the venv's path to stdout.
# scripts/vllm_constraints/VERSION.txt (pip freeze of a working venv, written by
# `make vllm-table`) pins every dependency, so that a cold build installs what was tested: vllm
# itself pins torch but not, e.g., transformers. A changed constraints file rebuilds the venv.
set -euo pipefail
version="${1:?usage: scripts/vllm_venv.sh VERSION}"
root="${MODELFLEET_CACHE:-$HOME/.cache/modelfleet}/vllm"
dir="$root/$version"
stamp="$dir/.complete"
constraints="$(cd "$(dirname "$0")" && pwd)/vllm_constraints/$version.txt"
if [[ -f "$constraints" ]]; then
  key="constraints $(sha1sum < "$constraints" | cut -c1-12)"
  pin=(-c "$constraints")
else
  key="unconstrained"
  pin=()
fi
mkdir -p "$root"
exec 9>"$root/.lock-$version"
if ! flock -n 9; then
  echo "[vllm-venv] another build of vllm $version is running; waiting for it" >&2
  flock 9
fi
if [[ -f "$stamp" && -x "$dir/bin/python" && "$(cat "$stamp")" == "$key" ]]; then
  echo "$dir"
  exit 0
fi
start=$(date +%s)
echo "[vllm-venv] building $dir: pip install vllm==$version ($key; ~8 GB with torch; minutes when the pip cache is cold)" >&2
rm -rf "$dir"
"${PYTHON:-python3}" -m venv "$dir"
VLLM_TARGET_DEVICE=cpu "$dir/bin/python" -m pip install --disable-pip-version-check --progress-bar off \
  "${pin[@]}" "vllm==$version" 2>&1 | grep --line-buffered -E '^(Collecting|Installing|Successfully|ERROR|error)' >&2 || true
if ! VLLM_TARGET_DEVICE=cpu "$dir/bin/python" -c "import vllm, sys; sys.exit(vllm.__version__ != '$version')"; then
  echo "[vllm-venv] FAILED: vllm $version does not import in $dir (see the pip output above)" >&2
  exit 1
fi
echo "$key" > "$stamp"
echo "[vllm-venv] vllm $version ready in $(( $(date +%s) - start )) s: $dir" >&2
echo "$dir"
