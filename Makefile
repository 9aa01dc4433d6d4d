# The two commands a new user needs: `make run` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CONFIG ?=
# Extra cmake arguments for the first configure, e.g. CMAKE_ARGS=-DCWHOOK_BUILD_TESTS=OFF
CMAKE_ARGS ?=
# ccache keys on paths relative to the checkout, so a fresh clone reuses earlier builds, and
# not on the build directory, so build/ and build-package/ (same flags) share their objects:
# the package costs a link, not a second compile. (Debug info then names whichever build
# directory compiled an object first.)
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=

.PHONY: all deps test-deps configure build daemon run test test-asan test-tsan fuzz clean package test-package \
        test-container test-container-scale

all: build

deps:
	@./tools/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

configure: deps $(BUILD_DIR)/build.ninja

# Everything: the daemon, the test binaries and the fuzz replays.
build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Only what `make run` runs: the cwhook binary (a cold 2-core machine builds the tests only
# for `make test`).
daemon: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target cwhook

run: daemon
	./$(BUILD_DIR)/daemon/cwhook serve $(if $(CONFIG),--config $(CONFIG))

# Test-only tools: systemd-analyze (unit checks), nginx (reverse-proxy test) and PostgreSQL 15
# (the throwaway clusters of the PostgreSQL tests).
test-deps:
	@./tools/install-deps.sh test

test: test-deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 300

# The whole suite under AddressSanitizer + UndefinedBehaviorSanitizer. The preset compiles at
# -O0 with line tables only (-g1): reports keep file:line, and the build (the longest step of
# .ci/run) takes about 19 minutes on 2 cores instead of 32 at -O1 (lib/http/server.cpp alone:
# 143 s instead of 382 s); the suite then runs about 90 s longer (387 s).
test-asan: deps
	cmake --preset asan
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS) --timeout 600

# The whole suite under ThreadSanitizer (halt_on_error: a race fails its test; daemons started
# by the tests are the instrumented build too). About a minute once built.
test-tsan: deps
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan -j $(JOBS) --timeout 600

# Each libFuzzer target of tests/fuzz/ for FUZZ_SECONDS (clang, ASan+UBSan, build-fuzz/).
fuzz:
	./bench/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# clang-tidy and cppcheck over lib/ and daemon/ (build-lint/); non-zero on any finding.
.PHONY: lint
lint:
	./tools/lint.sh

# A .deb installed under /usr (build-package/cwhook_<version>_<arch>.deb): built as Debian
# builds its own packages (-O2 -g, RelWithDebInfo, the flags of build/) and stripped by cpack.
package: deps
	cmake -S . -B build-package -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCWHOOK_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr
	cmake --build build-package -j $(JOBS)
	cd build-package && cpack -G DEB

# Installs that .deb on this machine, checks the installed files and commands, then purges it.
test-package: package
	./tests/package/install_test.sh build-package

# docker/Dockerfile's image and docker/compose.yaml on a real engine (rootful podman, root):
# behind Caddy terminating TLS, signed callbacks stored byte-exact, SIGTERM, restart on the
# same volume. The image's runtime stage wraps this build's cwhook (no second compile). Base
# images come from debootstrap, cached in ~/.cache/cwhook-container (COLD=1 makes them again).
# FROM_SOURCE=1 tests the default target instead, compiling cwhook in the image (nightly-sized).
test-container: daemon
	@./tools/install-deps.sh container
	./tests/container/run.sh $(BUILD_DIR) $(if $(COLD),--cold) $(if $(FROM_SOURCE),--from-source)

# docker/compose.scale.yaml the same way: Caddy, two cwhook replicas and PostgreSQL 15
# (docker/postgres, Debian's package); one replica killed with SIGKILL mid-burst, nothing
# acknowledged lost, the replica restarted by its policy and back in the rotation.
test-container-scale: daemon
	@./tools/install-deps.sh container
	./tests/container/run.sh $(BUILD_DIR) --scale $(if $(COLD),--cold) $(if $(FROM_SOURCE),--from-source)

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan build-release build-package
