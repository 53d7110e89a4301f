# Thin wrapper over meson. Every target installs missing Debian packages
# first (as root; a no-op when all are present), so a fresh Debian 12 machine
# needs nothing else.
#
#   make test                     build + every test (native framing)
#   make test FRAMING=wslay       the same suite over the wslay codec
#   make test BACKEND=epoll       ... on epoll (the default, auto, runs io_uring
#                                 where the kernel allows it, else epoll)
#   make run                      build + the echo demo
#   make bench [QUICK=1]          ringlink against its peers: bench/results/REPORT.md
#   make fuzz FUZZ_SECONDS=60     every libFuzzer target
#   make test-asan / test-tsan    sanitizer builds of the suite

SHELL := /bin/bash

FRAMING   ?= native
BACKEND   ?= auto
ALLOCATOR ?= mimalloc
BUILDTYPE ?= debugoptimized
WERROR    ?= $(if $(CI),true,false)
FUZZ_SECONDS ?= 60
MESON_OPTS ?=
JOBS      ?= 2
CONNS     ?= 100
SIZE      ?= 64
DURATION  ?= 10
INFLIGHT  ?= 1
MODE      ?= echo
REACTORS  ?= 1

BUILD     ?= build/$(FRAMING)-$(BACKEND)-$(ALLOCATOR)-$(BUILDTYPE)
SETUP_OPTS = -Dframing=$(FRAMING) -Dio_backend=$(BACKEND) -Dallocator=$(ALLOCATOR) \
             --buildtype=$(BUILDTYPE) -Dwerror=$(WERROR) $(MESON_OPTS)

DEB_PACKAGES = g++ clang libclang-rt-14-dev meson ninja-build pkg-config \
  liburing-dev libwslay-dev libmimalloc-dev libgtest-dev libgmock-dev \
  libbenchmark-dev nettle-dev zlib1g-dev python3 python3-websockets golang-go \
  golang-github-gorilla-websocket-dev golang-golang-x-time-dev libssl-dev openssl procps gnuplot-nox chromium chromium-driver nodejs \
  libhiredis-dev libnats-dev redis-server nats-server
# Only `make bench` needs these: the reference servers it compares against.
BENCH_PACKAGES = libboost1.74-dev libwebsockets-dev linux-perf pmccabe
# npm comes with some nodejs builds (NodeSource's); Debian's is a package of its own.
DEB_PACKAGES += $(if $(shell command -v npm),,npm)

.PHONY: all deps deps-bench build test run bench bench-scale check-figures fuzz test-asan test-tsan clean

all: build

deps-bench: deps
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_PACKAGES)"

# Installing redis-server or nats-server must not start them as system
# services (the tests start their own, on free ports): while apt runs, a
# policy-rc.d that answers 101 forbids every service start, unless the
# machine already has a policy of its own.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)" >&2; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  policy=/usr/sbin/policy-rc.d; own_policy=""; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy && chmod +x $$policy && own_policy=1; fi; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; status=$$?; \
	  if [ -n "$$own_policy" ]; then rm -f $$policy; fi; \
	  exit $$status; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(SETUP_OPTS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) -j$(JOBS)

test: build
	meson test -C $(BUILD) --print-errorlogs --num-processes 2 $(TEST_ARGS)

# CONNS, SIZE, DURATION, INFLIGHT, MODE, REACTORS, LOAD_ARGS pass through.
run: build
	CONNS=$(CONNS) SIZE=$(SIZE) DURATION=$(DURATION) INFLIGHT=$(INFLIGHT) MODE=$(MODE) \
	  REACTORS=$(REACTORS) LOAD_ARGS="$(LOAD_ARGS)" bash tools/run_demo.sh $(BUILD)

# make bench [QUICK=1]: release builds of every configuration in
# BENCH_CONFIGS (framing-backend-allocator), the reference servers, then
# bench/scripts/bench_report.py -> bench/results/REPORT.md, results.json and
# the plots (see bench/README.md). QUICK=1 is a short version (< 5 min).
# A full run publishes its report as bench/RESULTS.md (with results.json and
# the plots beside it) and checks that every figure in the docs is backed by
# committed data (bench/scripts/check_figures.py). BENCH_BASELINE is the
# earlier run the before/after tables compare against.
BENCH_CONFIGS ?= native-epoll-mimalloc wslay-auto-mimalloc native-auto-system
BENCH_BUILD    = build/$(FRAMING)-$(BACKEND)-$(ALLOCATOR)-release
BENCH_BASELINE ?= bench/data/baseline/results-dd2d2e2.json
BENCH_SCALE    ?= bench/data/scale/scale.txt
bench: deps-bench
	$(MAKE) build BUILDTYPE=release
	@for c in $(BENCH_CONFIGS); do \
	  IFS=- read -r f b a <<< "$$c"; d=build/$$c-release; \
	  { [ -f $$d/build.ninja ] || meson setup $$d -Dframing=$$f -Dio_backend=$$b -Dallocator=$$a \
	      --buildtype=release -Dwerror=$(WERROR) $(MESON_OPTS); } && \
	  ninja -C $$d -j$(JOBS) tools/ringlink-echo tools/ringlink-load || \
	  echo "bench: configuration $$c did not build; the report skips it" >&2; \
	done
	-ninja -C $(BENCH_BUILD) -j$(JOBS) bench/peers/cpp/beast_echo   # absent without libboost
	bash bench/scripts/build_peers.sh $(BENCH_BUILD)
	/usr/bin/python3 bench/scripts/bench_report.py --build $(BENCH_BUILD) \
	  $(foreach c,$(BENCH_CONFIGS),--config $(c)=build/$(c)-release) \
	  --baseline $(BENCH_BASELINE) $(if $(wildcard $(BENCH_SCALE)),--scale $(BENCH_SCALE)) \
	  --out bench/results $(if $(filter-out 0,$(QUICK)),--quick)
	@if [ "$(filter-out 0,$(QUICK))" = "" ]; then \
	  cp bench/results/REPORT.md bench/RESULTS.md && cp bench/results/results.json bench/results.json && \
	  cp bench/results/*.png bench/ && echo "bench: published bench/RESULTS.md"; \
	  /usr/bin/python3 bench/scripts/check_figures.py; \
	fi

# make bench-scale [SCALE_LINKS=100000 SCALE_RATE=20000]: many idle links over
# several processes on both sides (bench/scripts/scale.sh). A run of the full
# 100,000 links is published as $(BENCH_SCALE), which the next make bench puts
# in bench/RESULTS.md with its extrapolation to 1,000,000 links.
SCALE_LINKS ?= 100000
SCALE_RATE  ?= 20000
bench-scale: deps-bench
	$(MAKE) build BUILDTYPE=release
	mkdir -p bench/results
	set -o pipefail; bash bench/scripts/scale.sh $(BENCH_BUILD) $(SCALE_LINKS) $(SCALE_RATE) | tee bench/results/scale.txt
	@if [ "$(SCALE_LINKS)" = 100000 ]; then mkdir -p $(dir $(BENCH_SCALE)) && \
	  cp bench/results/scale.txt $(BENCH_SCALE) && echo "bench-scale: published $(BENCH_SCALE)"; fi

# Every figure in README.md, bench/README.md, docs/ and bench/RESULTS.md backed by committed data.
check-figures:
	/usr/bin/python3 bench/scripts/check_figures.py

# The sanitizers see only the system allocator's heap (and TSan would take
# mimalloc's reuse of memory across threads for races): allocator=system.
test-asan:
	$(MAKE) test ALLOCATOR=system BUILD=build/asan-$(FRAMING)-$(BACKEND)-$(notdir $(CXX)) \
	  MESON_OPTS="-Db_sanitize=address,undefined -Db_lundef=false"

# Every suite that starts threads: the rings, the engine over loopback, the
# fault probes, the real-peer integration tests, the load tool, the conformance
# judge and the examples. Only the single-threaded protocol unit tests and the
# packaging tests (install, subproject) are left out. TSan slows a test 5-15x:
# the timeouts are tripled.
TSAN_SUITES ?= --suite net --suite engine --suite fault --suite integration --suite load \
  --suite conformance --suite examples
test-tsan:
	$(MAKE) test ALLOCATOR=system BUILD=build/tsan-$(FRAMING)-$(BACKEND) MESON_OPTS="-Db_sanitize=thread" \
	  TEST_ARGS="$(TSAN_SUITES) --timeout-multiplier 3"

FUZZ_BUILD = build/fuzz
FUZZ_TARGETS = fuzz_handshake fuzz_frame_decoder fuzz_differential fuzz_session fuzz_link fuzz_deflate_negotiation fuzz_inflate
fuzz: deps
	[ -f $(FUZZ_BUILD)/build.ninja ] || CXX=clang++ meson setup $(FUZZ_BUILD) -Dfuzz=true -Dwerror=$(WERROR) \
	  --buildtype=debugoptimized -Db_sanitize=address,undefined -Db_lundef=false \
	  -Dcpp_args=-fsanitize=fuzzer-no-link
	ninja -C $(FUZZ_BUILD) -j$(JOBS) $(addprefix tests/fuzz/,$(FUZZ_TARGETS))
	@set -e; for t in $(FUZZ_TARGETS); do \
	  work=$$(mktemp -d); cp -r tests/fuzz/corpus/$$t/. $$work/ 2>/dev/null || true; \
	  echo "== $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/$$t- $$work 2>&1 | grep -E 'stat::number_of_executed_units|Done|ERROR|SUMMARY' ; \
	  status=$${PIPESTATUS[0]}; rm -rf $$work; \
	  [ $$status -eq 0 ] || { echo "$$t found a crash: see $(FUZZ_BUILD)/$$t-*"; exit 1; }; \
	done

clean:
	rm -rf build

# Installs the headers (<PREFIX>/include/ringlink), libringlink.a and .so,
# ringlink.pc and the tools. DESTDIR=... stages it elsewhere.
PREFIX ?= /usr/local
.PHONY: install
install: build
	meson configure $(BUILD) -Dprefix=$(abspath $(PREFIX))
	meson install -C $(BUILD) $(if $(DESTDIR),--destdir $(abspath $(DESTDIR)))
