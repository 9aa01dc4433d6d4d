#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz/ one after another and prints, per target,
# executions, exec/s, coverage (cov/ft of libFuzzer's last status line) and crashes found.
#
#   bench/fuzz.sh [seconds] [target...]      default: 60 seconds, every target
#
# Builds with clang 16 (installed when missing) into build-fuzz/: every library with
# -fsanitize=address,undefined and libFuzzer's coverage instrumentation, the targets with
# -fsanitize=fuzzer. Each target fuzzes a writable corpus, build-fuzz/corpus/<target>/
# (started from tests/fuzz/<target>/seeds/, kept between runs), on one core. Crash inputs go
# to build-fuzz/artifacts/<target>/, logs to build-fuzz/runs/<target>/fuzz-0.log; each crash
# input is run once more to print what failed, grouped, with the smallest input of each group.
#
# FUZZ_KEEP_GOING=1: libFuzzer's fork mode (-fork=1, still one core) with crashes, timeouts
# and out-of-memory inputs recorded but not stopping the run, so a target with a known,
# unfixed crash still fuzzes for the whole time. The log is then build-fuzz/runs/<target>/fork.log.
# Exit status: 0 when no target crashed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
all_targets=(payload key_url signature config http)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "tests/fuzz/$t.cpp" ] || { echo "fuzz.sh: no target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
done

# clang 16 with libFuzzer (tools/install-deps.sh says why not Debian's default clang 14).
./tools/install-deps.sh fuzz

build=build-fuzz
# No CMAKE_BUILD_TYPE: optimised, but without NDEBUG, so the assertions of the libraries we
# use stay armed. -fno-sanitize-recover: a UBSan finding must stop the run like an ASan one,
# or libFuzzer never records it as a crash.
flags="-O2 -gline-tables-only -fno-omit-frame-pointer"
flags+=" -fsanitize=address,undefined -fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined"
flags+=" -Wno-unknown-warning-option"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER=clang++-16 \
  -DCMAKE_CXX_FLAGS="$flags" -DCWHOOK_FUZZ=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/cwhook_fuzz_}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
symbolizer=$(command -v llvm-symbolizer-16 || command -v llvm-symbolizer || true)
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="${ASAN_SYMBOLIZER_PATH:-$symbolizer}"
keep_going="${FUZZ_KEEP_GOING:-0}"

summary=()
crashed=0
root="$PWD"
for t in "${targets[@]}"; do
  corpus="$root/$build/corpus/$t"
  artifacts="$root/$build/artifacts/$t"
  run="$root/$build/runs/$t"
  mkdir -p "$corpus" "$artifacts" "$run"
  cp -n "tests/fuzz/$t/seeds/"* "$corpus/" 2>/dev/null || true
  rm -f "$run/fuzz-0.log" "$run/fork.log"
  touch "$run/started"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="$root/tests/fuzz/$t.dict")
  # The seeds folder is a second corpus, read but never written.
  args+=("$corpus" "$root/tests/fuzz/$t/seeds")
  fuzzer="$root/$build/tests/fuzz/cwhook_fuzz_$t"

  echo "== $t: ${seconds}s"
  if [ "$keep_going" = 1 ]; then
    log="$run/fork.log"
    (cd "$run" && "$fuzzer" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 "${args[@]}") >"$log" 2>&1 || true
  else
    # -jobs=1 -workers=1: one fuzzing process (one core); it logs to fuzz-0.log in its folder.
    log="$run/fuzz-0.log"
    (cd "$run" && "$fuzzer" -jobs=1 -workers=1 "${args[@]}") >/dev/null 2>&1 || true
  fi
  touch "$log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  status=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$status")
  if [ -z "$rate" ]; then  # fork mode prints no final stats: executions over elapsed time
    elapsed=$(sed -n 's/.* time: \([0-9]*\)s.*/\1/p' <<<"$status")
    [ -n "$execs" ] && [ "${elapsed:-0}" -gt 0 ] && rate=$((execs / elapsed))
  fi
  mapfile -t found < <(find "$artifacts" -type f -newer "$run/started")
  [ ${#found[@]} -gt 0 ] && crashed=1
  line=$(printf '%-10s executions %-10s exec/s %-7s cov %-6s ft %-7s corpus %-6s crashes %s' \
    "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$(find "$corpus" -type f | wc -l)" "${#found[@]}")
  echo "$line"
  if [ ${#found[@]} -gt 0 ]; then
    # Each input run once more to tell what went wrong: one line per distinct failure, with
    # how many inputs hit it and the smallest of them.
    for f in "${found[@]}"; do
      why=$("$fuzzer" -timeout=10 "$f" 2>&1 | grep -m1 -E "$t fuzz: |Assertion .* failed|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:" |
        sed -e 's/^==[0-9]*==//' -e 's/^[^ ]*cwhook_fuzz_[a-z_]*: //' -e 's/^[^ ]*: runtime error/runtime error/') || true
      printf '%s\t%s\t%s\n' "${why:-did not fail again}" "$(stat -c %s "$f")" "$f"
    done | sort -t $'\t' -k1,1 -k2,2n | awk -F '\t' '
      $1 != last { if (last != "") printf "           %4d x %s\n                  smallest: %s\n", n, last, first; last = $1; first = $3; n = 0 }
      { n++ }
      END { printf "           %4d x %s\n                  smallest: %s\n", n, last, first }'
  fi
  summary+=("$line")
done

echo
echo "== summary (${seconds}s per target; logs in $build/runs/<target>/)"
printf '%s\n' "${summary[@]}"
exit "$crashed"
