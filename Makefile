# ivrd — two commands on a fresh Debian machine:
#   make run    install what is missing (apt, as root), build, start ivrd on its embedded defaults
#   make test   install what is missing, then every test
GO      ?= go
BIN     := bin/ivrd
PKGS    := ./...
# packages whose tests exercise concurrency: run again under the race detector
RACE    := ./internal/ivr/... ./internal/store/... ./internal/api/... ./internal/audio/... ./internal/recording/... ./internal/notify/... ./internal/telephony/... \
           ./internal/httplimit/... ./internal/outbound/... ./internal/tally/... ./internal/diskwatch/... \
           ./internal/console/... ./internal/calllog/... ./internal/metrics/... ./internal/health/... ./internal/cluster/...

.PHONY: build run test soak vet fmt bench clean

# build: what building and running needs; make test and make bench install their tools too.
build:
	@./scripts/install-deps.sh run
	$(GO) build -o $(BIN) ./cmd/ivrd

run: build
	./$(BIN) serve $(ARGS)

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

vet:
	@test -z "$$(gofmt -l cmd internal test bench)" || { gofmt -l cmd internal test bench; echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# The tests' S3 server (versitygw) is built once per machine into $(go env GOPATH)/bin. The
# end-to-end tests run on their own, after the others: they measure audio timing on real calls,
# which other packages' tests running beside them (sipp, 20,000-connection floods) disturb.
test:
	@./scripts/install-deps.sh test
	@./scripts/s3.sh install >/dev/null
	@$(MAKE) --no-print-directory vet
	$(GO) test -count=1 -timeout 20m $$($(GO) list $(PKGS) | grep -v /test/e2e)
	IVRD_ARTIFACTS=$(CURDIR)/artifacts $(GO) test -count=1 -timeout 30m ./test/e2e/
	$(GO) test -count=1 -race -timeout 20m $(RACE)

# make soak: the fault and attack tests at full length (test/e2e/*soak_test.go and httplimit's
# connection-cap flood), about 11 minutes:
# the app refusing connections for a minute then answering 500 for a minute with ivrd SIGKILLed
# and restarted meanwhile (20 calls), 20,000 slow clients for 5 minutes, and three nodes behind
# Kamailio with 60 calls, one node SIGKILLed with 20 live (1 minute). CI runs make test only.
soak:
	@./scripts/install-deps.sh test
	IVRD_SOAK=1 $(GO) test -count=1 -timeout 30m -run 'Soak' -v ./internal/httplimit/ ./test/e2e/

# make bench: the benchmark harness (bench/, BENCHMARKS.md): real sipp calls against a fresh ivrd in
# steps until quality degrades, notification latency for short and 10-minute calls and for 1,000 calls
# ending at once, API and encoder next to their baselines, and the same calls through Kamailio and
# rtpengine. About 30 minutes; results in bench/results/ and BENCHMARKS.md.
# Pass harness flags with BENCH_ARGS, e.g. make bench BENCH_ARGS="-phases capacity -steps 100,250".
BENCH_ARGS ?=
bench:
	@./scripts/install-deps.sh bench
	$(GO) run ./bench $(BENCH_ARGS)

clean:
	rm -rf bin
