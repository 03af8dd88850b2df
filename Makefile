# harp — build, run, test. Installs the system packages it needs when they are missing.
SHELL := /bin/bash
CARGO ?= cargo
APT_STAMP := /tmp/.harp-apt-updated

.PHONY: run build test test-heavy bench perf deps-test clean-logs

## Build harp (release) and start it on the shipped example config.
run: build
	./target/release/harp -f lua/example.cfg

build:
	$(CARGO) build --release --bin harp

# apt-get update once per machine, then install what is missing.
define apt_install
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    [ -f $(APT_STAMP) ] || { apt-get update -qq && touch $(APT_STAMP); }; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	fi
endef

deps-test:
	$(call apt_install,socat openssl)

## Format, lint, then every unit, integration and doc test of the workspace.
test: deps-test
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

## Long fault-injection tests (64 MiB x 100 connections and similar), not run by `make test`.
test-heavy: deps-test
	$(CARGO) test --workspace --release -- --ignored

## Criterion micro-benchmarks.
bench:
	$(CARGO) bench --workspace

## Side-by-side load comparison against HAProxy, nginx stream and a direct connection.
perf:
	bash perf/compare.sh
