# h1server — the two commands a newcomer needs are `make run` and `make test`.
CARGO ?= cargo
export CARGO

.PHONY: run test test-deps scale-test check fuzz fuzz-cmin bench bench-micro bench-callgrind bench-ws bench-proxy bench-peers wrk ab hello footprint tiny clean

## Starts the demo service on 127.0.0.1:8080 (Ctrl-C drains and stops it).
run:
	$(CARGO) run --release

## Runs every test (installs the real clients the tests drive — curl, ab, wrk, chromium — and
## PostgreSQL if missing). `--features postgres` builds the demo with its PostgreSQL
## backend, so tests/db.rs also runs it against a server it starts; `ws` (off by default)
## adds the WebSocket codec's tests; `client` (on by default, named so a trimmed default
## cannot drop them) the client's, against python3 and nginx too; `proxy` (off by default)
## the reverse proxy's, with examples/gateway in front of the demo and nginx; `tls` (off by
## default) HTTPS, against curl and python3 with a certificate made by openssl (tests/tls.rs).
test: test-deps
	$(CARGO) test --features postgres,ws,client,proxy,tls

## Installs curl, ab (apache2-utils), wrk, python3, openssl, prometheus (+ promtool), chromium, chromium-driver and postgresql with apt-get when missing.
test-deps:
	@sh .ci/deps.sh

## Three demo instances sharing one SQLite file behind a real nginx, each restarted in turn
## (SIGTERM, exit, start) under a wrk GET load, then a POST-only load: 0 failed or non-2xx
## requests (tests/scale.rs, with the release build; SCALE_SECS sets each load's length).
scale-test: test-deps
	$(CARGO) build --release --bin h1server
	SCALE_BIN="$${CARGO_TARGET_DIR:-target}/release/h1server" $(CARGO) test --test scale -- --nocapture

## fmt + clippy, as CI and reviewers expect them (default features, every feature, and the
## engine alone).
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features postgres,ws,client,proxy,tls -- -D warnings
	$(CARGO) clippy --all-targets --features tls -- -D warnings
	$(CARGO) clippy --all-targets --no-default-features -- -D warnings

FUZZ_TIME ?= 600
FUZZ_TARGETS ?= head chunked conn conn_split ws multipart client
FUZZ_FLAGS ?= -rss_limit_mb=2048 -timeout=10

## Coverage-guided fuzzing (docs/FUZZING.md): each of FUZZ_TARGETS (head, chunked, conn,
## conn_split, ws, multipart, client) in turn, one process at a time, for FUZZ_TIME seconds (default 600), with
## cargo-fuzz on the nightly toolchain (installs cargo-fuzz if missing). Starts from
## fuzz/corpus/<target> and keeps what it finds in fuzz/work/<target> (not in git); fails
## at the first crash, hang or out-of-memory, whose input lands in fuzz/artifacts/<target>/.
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== fuzz $$t for $(FUZZ_TIME)s"; \
		mkdir -p fuzz/work/$$t; \
		$(CARGO) +nightly fuzz run $$t fuzz/work/$$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_TIME) $(FUZZ_FLAGS); \
	done

## Folds what runs found (fuzz/work/<target>) into the corpus kept in git, minimised: an
## input is added only if it reaches an edge that fuzz/corpus/<target> does not (libFuzzer's
## -merge=1 with -use_counters=0, a greedy set cover), so the seeds stay, and the corpus
## stays a few hundred small files.
fuzz-cmin:
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$t; \
		$(CARGO) +nightly fuzz run $$t fuzz/corpus/$$t fuzz/work/$$t -- \
			-merge=1 -use_counters=0 -set_cover_merge=1 $(FUZZ_FLAGS); \
	done

## Micro-benchmarks (parser, timer wheel), then bench/run.sh: wrk keep-alive, wrk pipelined
## x16, ab -k and memory per idle connection against examples/hello, with server CPU per
## request; then the side-by-side harness if ../shared/bench is beside the checkout.
## Settings from the environment or the command line: make bench DURATION=2 (docs/BENCHMARKS.md).
bench: bench-micro
	@bench/run.sh

bench-micro:
	$(CARGO) bench --features bench-internals --bench parse
	$(CARGO) bench --features bench-internals --bench timer

## User-space instructions per request of examples/hello under callgrind (needs valgrind):
## a count that does not move with the machine's load, for comparing two builds
## (`CLIENT=wrk` for the harness's load, wrk -c64 pinned, instead of ab -c8).
bench-callgrind:
	@bench/callgrind.sh

## WebSocket broadcast through examples/chat: deliveries/s and RSS per connection with 1,000
## clients on 2 workers (bench/ws.sh; CLIENTS, MESSAGES, H1_WORKERS change it).
bench-ws:
	@bench/ws.sh

## Only the side-by-side harness (../shared/bench; says so and succeeds when it is absent).
bench-peers:
	@TESTS=peers bench/run.sh

## The reverse proxy under wrk keep-alive load: examples/hello directly, through nginx
## proxy_pass (keepalive pool) and through examples/gateway, with each process's CPU per
## request and the CPU other work took (docs/BENCHMARKS.md, "Reverse proxy"). Needs nginx.
bench-proxy:
	@bench/proxy.sh

hello:
	$(CARGO) build --release --example hello

## The footprint check alone (part of `make test`): the stripped engine-only examples/hello
## and its idle memory against the stated limits, figures printed (docs/BENCHMARKS.md).
footprint:
	$(CARGO) test --test footprint -- --nocapture

## The two smallest builds of the engine-only hello (footprint/), stripped, for embedding:
## std without its backtrace symbolizer (nightly -Zbuild-std, 0.45 MiB) and static musl
## (2 MB idle less glibc). Needs nightly with rust-src and the musl target (.ci/deps.sh).
TINY_TRIPLE := $(shell uname -m)-unknown-linux
tiny:
	CARGO_PROFILE_RELEASE_STRIP=symbols rustup run nightly cargo build --release \
	    --manifest-path footprint/Cargo.toml --target-dir target/footprint-no-symbolizer \
	    --target $(TINY_TRIPLE)-gnu -Zbuild-std=std,panic_unwind \
	    -Zbuild-std-features=panic-unwind,optimize_for_size
	CARGO_PROFILE_RELEASE_STRIP=symbols $(CARGO) build --release \
	    --manifest-path footprint/Cargo.toml --target-dir target/footprint-musl \
	    --target $(TINY_TRIPLE)-musl
	@ls -l target/footprint-no-symbolizer/$(TINY_TRIPLE)-gnu/release/hello \
	    target/footprint-musl/$(TINY_TRIPLE)-musl/release/hello

## A short wrk keep-alive run against examples/hello (for a user who just wants to try).
wrk:
	@TESTS=keepalive DURATION=$${DURATION:-5} bench/run.sh

## A short `ab -k` (HTTP/1.0 keep-alive) run against examples/hello.
ab:
	@TESTS=ab DURATION=$${DURATION:-5} bench/run.sh

clean:
	$(CARGO) clean
