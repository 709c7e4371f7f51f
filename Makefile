# h1server — the two commands a newcomer needs are `make run` and `make test`.
CARGO ?= cargo
PORT  ?= 8090
BENCH := ../shared/bench

.PHONY: run test test-deps check bench bench-micro bench-peers wrk ab hello clean

## Starts the demo service on 127.0.0.1:8080 (Ctrl-C drains and stops it).
run:
	$(CARGO) run --release

## Runs every test (installs the real clients the tests drive — curl, ab, wrk, chromium — if missing).
test: test-deps
	$(CARGO) test

## Installs curl, ab (apache2-utils), wrk, python3 and chromium with apt-get when they are missing.
test-deps:
	@sh .ci/deps.sh

## fmt + clippy, as CI and reviewers expect them (default features, and the engine alone).
check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --no-default-features -- -D warnings

## Micro-benchmarks (parser, timer wheel) and the side-by-side harness with the peers.
bench: bench-micro bench-peers

bench-micro:
	$(CARGO) bench --features bench-internals --bench parse
	$(CARGO) bench --features bench-internals --bench timer

## The side-by-side run needs the workplace's harness beside the checkout; without it (a
## fresh clone elsewhere) a short wrk run of examples/hello stands in, and says so.
bench-peers: hello
	@if [ -x $(BENCH)/run.sh ]; then \
	    $(BENCH)/run.sh --pipeline 16 --repeats 3 \
	        --only mio-limit,hyper,actix-web,may_minihttp,nginx,go-nethttp,tiny_http \
	        --peer "h1server=$(CURDIR)/target/release/examples/hello --port 8090 8090"; \
	else \
	    echo "$(BENCH) not found: no peers to compare with; a short wrk run of examples/hello instead"; \
	    sh .ci/try-load.sh wrk $(PORT); \
	fi

hello:
	$(CARGO) build --release --example hello

## A short wrk run against examples/hello (for a user who just wants to try).
wrk: hello
	@sh .ci/try-load.sh wrk $(PORT)

## A short `ab -k` (HTTP/1.0 keep-alive) run against examples/hello.
ab: hello
	@sh .ci/try-load.sh ab $(PORT)

clean:
	$(CARGO) clean
