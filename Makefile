# datagate — see README.md.
GO       ?= go
BIN      := bin/datagate
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
DATA     ?= ./var

.PHONY: all build run test vet lint bench bench-quick bench-core bench-recovery bench-fuse bench-sftp bench-s3 litmus bench-webdav clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/datagate

# Set up a demo catalogue on the embedded default and serve it.
run: build
	$(BIN) --data $(DATA) demo
	$(BIN) --data $(DATA) serve

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

# staticcheck comes through the Go module proxy, pinned.
lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

test: lint
	$(GO) test -race -timeout 20m ./...

# The README's figures, each beside its reference measured in the same run,
# as one table: area, measurement, datagate, reference, ratio, target,
# result (cmd/benchsuite: `go run ./cmd/benchsuite --list` shows the steps;
# each step's go test output is kept, see --out). Long, not part of CI:
# about 20 minutes on 2 cores; bench-quick prints every row with smaller
# sizes. BENCHFLAGS passes flags (--json, --out DIR, -v); the size knobs
# are environment variables (README "Figures").
bench:
	$(GO) run ./cmd/benchsuite $(BENCHFLAGS)

bench-quick:
	$(GO) run ./cmd/benchsuite --quick $(BENCHFLAGS)

# The core's figures alone: catalogue, Store reads and writes, replication,
# collection, views.
bench-core:
	$(GO) run ./cmd/benchsuite --only core -v $(BENCHFLAGS)

# Restart after kill -9 of a server holding 1,000,000 objects (README
# "Figures"): fills the catalogue with `datagate register` first, ~2 min.
bench-recovery:
	$(GO) run ./cmd/benchsuite --only recovery -v $(BENCHFLAGS)

# SFTP front-end beside OpenSSH's sshd + sftp-server and rclone serve sftp
# (README "SFTP and SCP"). Needs openssh-client, openssh-server, rclone; root.
# SFTP_BENCH_MIB sizes the file got (default 1024).
bench-sftp:
	$(GO) run ./cmd/benchsuite --only sftp -v $(BENCHFLAGS)

# FUSE front-end beside a plain directory and go-fuse's own loopback, in the
# same run (README "FUSE mount"). Needs /dev/fuse and root, curl; ~1 min.
bench-fuse:
	$(GO) run ./cmd/benchsuite --only fuse -v $(BENCHFLAGS)

# S3 front-end (README "S3 API"): 4 KiB GET/HEAD at 32 connections and a
# 100,000-object ListObjectsV2 in process (client and server CPU together);
# then the real binary, its CPU from /proc: PUT single/multipart and GET
# with minio-go (S3_BENCH_MIB, default 256), a cached 1 GiB GET with curl
# beside its WebDAV front-end and nginx (S3_BENCH_GET_MIB), 4 KiB GET/HEAD
# with wrk and presigned URLs beside WebDAV and nginx. Needs curl, wrk,
# nginx for the last two (skipped without them).
bench-s3:
	$(GO) run ./cmd/benchsuite --only s3 -v $(BENCHFLAGS)

# WebDAV conformance: litmus (Debian package) against a freshly started
# server; known failures are listed in the README ("WebDAV").
litmus:
	$(GO) test ./integration -count=1 -run 'TestWebDAVLitmus' -v -timeout 10m

# WebDAV front-end beside rclone serve webdav and nginx on the same files
# (README "WebDAV"). Needs curl, wrk, rclone, nginx; WEBDAV_BENCH_MIB
# sizes the big GET (default 1024).
bench-webdav:
	$(GO) run ./cmd/benchsuite --only webdav -v $(BENCHFLAGS)

# Soak (integration/soak_test.go): `datagate serve` over 1,000,000
# registered objects (DATAGATE_SOAK_OBJECTS) under SFTP, S3, WebDAV and
# admin load with expiry, reloads and eviction for DATAGATE_SOAK (30m),
# sampled (RSS, fds, goroutines, /metrics, p50/p99 per minute), then
# kill -9, restart, read back and fsck. `make test` runs a 40 s version.
.PHONY: soak
soak:
	DATAGATE_SOAK=$${DATAGATE_SOAK:-30m} $(GO) test ./integration -run '^TestSoak$$' -count=1 -v -timeout 3h

clean:
	rm -rf bin
