#!/usr/bin/env bash
# Static analysis of lib/ and daemon/: clang-tidy-14 with the project's .clang-tidy, then
# cppcheck. Exits non-zero on any finding. A finding is either fixed or suppressed at the line
# with `// NOLINT(check): reason` or `// cppcheck-suppress id ; reason`.
# Usage: tools/lint.sh   (LINT_BUILD_DIR and JOBS override the defaults below)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
build_dir="${LINT_BUILD_DIR:-build-lint}"
jobs="${JOBS:-2}"

# The build dependencies (configure needs them) plus the two analysers.
./tools/install-deps.sh lint

# Only compile_commands.json is needed: nothing is built and nothing is generated. Tests are
# not linted, so they are not configured either.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCWHOOK_BUILD_TESTS=OFF >/dev/null

status=0
log="$(mktemp)"
trap 'rm -f "$log" "$log.plain"' EXIT

echo "== clang-tidy"
# clang parses the GCC command lines: it does not know GCC-only warning flags such as
# -Wno-mismatched-new-delete. run-clang-tidy only fails on compiler errors, so warnings are
# counted from the output.
if ! run-clang-tidy-14 -p "$build_dir" -quiet -j "$jobs" \
    -extra-arg=-Wno-unknown-warning-option \
    "^${root}/(lib|daemon)/.*\.cpp$" >"$log" 2>&1; then
  status=1
fi
sed 's/\x1b\[[0-9;]*m//g' "$log" >"$log.plain"
grep -v -e '^Running clang-tidy' -e '^clang-tidy-14 ' -e 'warnings\? generated\.$' \
  -e '^Suppressed [0-9]* warnings' -e '^Use -header-filter' -e '^Enabled checks:' \
  -e '^$' "$log.plain" || true
if grep -q -E ': (warning|error):' "$log.plain"; then
  status=1
fi

echo "== cppcheck"
# With --project, file filters match the paths relative to the working directory (the root).
if ! cppcheck --project="$build_dir/compile_commands.json" \
    --enable=warning,performance,portability --inline-suppr \
    --suppress=missingIncludeSystem --error-exitcode=1 --library=std \
    -i tests --file-filter='lib/*' --file-filter='daemon/*' \
    -j "$jobs" --quiet; then
  status=1
fi

if [ "$status" -eq 0 ]; then
  echo "lint: clean"
else
  echo "lint: findings above" >&2
fi
exit "$status"
