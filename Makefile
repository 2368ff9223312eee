# ivrd — two commands on a fresh Debian machine:
#   make run    install what is missing (apt, as root), build, start ivrd on its embedded defaults
#   make test   install what is missing, then every test
GO      ?= go
BIN     := bin/ivrd
PKGS    := ./...
# packages whose tests exercise concurrency: run again under the race detector
RACE    := ./internal/ivr/... ./internal/api/... ./internal/recording/... ./internal/notify/... ./internal/telephony/...

.PHONY: deps build run test vet fmt bench clean

deps:
	@./scripts/install-deps.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/ivrd

run: build
	./$(BIN) serve $(ARGS)

vet:
	@test -z "$$(gofmt -l cmd internal test)" || { gofmt -l cmd internal test; echo "gofmt needed"; exit 1; }
	$(GO) vet $(PKGS)

test: deps vet
	$(GO) test -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -race -timeout 20m $(RACE)

bench: deps
	@echo "benchmarks: see issue 6 (bench/)"; $(GO) test -run '^$$' -bench . -benchtime 2s ./internal/recording/ ./internal/audio/

clean:
	rm -rf bin
