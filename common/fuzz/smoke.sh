#!/usr/bin/env bash
# Fuzz smoke test for CI: builds the cargo-fuzz targets of fritter-common, writes the seed corpus,
# then runs each target for FUZZ_SECONDS (default 30). Exits non-zero if any target crashes,
# panics, times out (a hang) or runs out of memory; the failing input is left in
# common/fuzz/artifacts/<target>/ and printed in hex.
#
#   bash common/fuzz/smoke.sh                       # from the repo root, as .ci/run does
#   FUZZ_SECONDS=300 bash common/fuzz/smoke.sh      # a longer local run
#   FUZZ_TARGETS="storage_open proof_verify" ...    # only some targets
#   FUZZ_SKIP="storage_open" ...                    # all but some (e.g. while a known crash is open)
#
# Stable Rust only: `-s none` (no sanitizer; ASan needs nightly). cargo fuzz builds in release
# mode with debug assertions and overflow checks, so arithmetic overflow counts as a crash.
# Inputs in common/fuzz/regressions/<target>/ (crashes found earlier) run first on every pass.
set -euo pipefail

cd "$(dirname "$0")/../.."
FUZZ_DIR=common/fuzz
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
ALL_TARGETS="entry_decode proof_verify storage_open schema_validate path_and_url wire_decode"
TARGETS="${FUZZ_TARGETS:-$ALL_TARGETS}"
SKIP=" ${FUZZ_SKIP:-} "

start=$(date +%s)
log() { printf '\n--- fuzz: %s (%ss)\n' "$*" "$(($(date +%s) - start))"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

log "building targets"
build_args=(-s none --fuzz-dir "$FUZZ_DIR")
cargo fuzz build "${build_args[@]}"

log "writing seed corpus"
# proof_verify's init writes every target's seeds when FRITTER_FUZZ_WRITE_SEEDS is set, then exits.
FRITTER_FUZZ_WRITE_SEEDS="$PWD/$FUZZ_DIR/corpus" cargo fuzz run "${build_args[@]}" proof_verify -- -runs=0

failed=()
summary=()
for t in $TARGETS; do
  if [[ "$SKIP" == *" $t "* ]]; then
    log "$t: skipped (FUZZ_SKIP)"
    summary+=("$t: skipped")
    continue
  fi
  log "$t: ${SECONDS_PER_TARGET}s"
  corpus=("$FUZZ_DIR/corpus/$t")
  mkdir -p "${corpus[0]}"
  if [ -d "$FUZZ_DIR/regressions/$t" ]; then
    corpus+=("$FUZZ_DIR/regressions/$t")
  fi
  out="$FUZZ_DIR/artifacts/$t.log"
  mkdir -p "$FUZZ_DIR/artifacts"
  set +e
  # Errors of libFuzzer go to stderr; keep the whole run in a log and show its tail.
  cargo fuzz run "${build_args[@]}" "$t" "${corpus[@]}" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -close_fd_mask=1 >"$out" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$out" | tail -1 || true)
  if [ "$rc" -ne 0 ] && grep -q "failed to build fuzz script" "$out"; then
    failed+=("$t")
    summary+=("$t: BUILD FAILED (exit $rc)")
    echo "$t did not build; log: $out"
    grep -E -B2 -A12 "^error" "$out" | head -60 || tail -40 "$out"
  elif [ "$rc" -ne 0 ]; then
    failed+=("$t")
    summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions")
    echo "$t FAILED with exit code $rc; log: $out"
    grep -E -A30 "panicked at|ERROR: libFuzzer|SUMMARY: libFuzzer" "$out" | grep -vE '^\s+at /(rustc|root/\.cargo)/' | head -60 || tail -40 "$out"
    for a in "$FUZZ_DIR/artifacts/$t"/*; do
      [ -f "$a" ] || continue
      echo "reproducer $a ($(wc -c <"$a") bytes):"
      od -An -v -tx1 "$a" | tr -d ' \n' | fold -w 128
      echo
      echo "replay: cargo fuzz run -s none --fuzz-dir $FUZZ_DIR $t $a"
    done
  else
    echo "$done_line"
    summary+=("$t: ok, ${execs:-?} executions in ${SECONDS_PER_TARGET}s")
  fi
done

log "summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "fuzz smoke FAILED: ${failed[*]}"
  exit 1
fi
ran=$(printf '%s\n' "${summary[@]}" | grep -c ": ok," || true)
echo "fuzz smoke passed: $ran targets run, 0 crashes, $(($(date +%s) - start))s"
