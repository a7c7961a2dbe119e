# datagate — see README.md.
GO       ?= go
BIN      := bin/datagate
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
DATA     ?= ./var

.PHONY: all build run test vet lint bench bench-recovery bench-fuse bench-sftp bench-s3 litmus bench-webdav clean

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

# Figures quoted in the README. Long: not part of CI.
bench:
	$(GO) test ./fs/index -run '^$$' -bench . -benchtime 1x -timeout 60m
	$(GO) test ./fs/index -run '^$$' -bench 'GetByID|Find' -timeout 60m
	$(GO) test ./fs/store -run '^$$' -bench . -benchtime 3x -timeout 30m
	$(GO) test ./backends/cache -run '^$$' -bench . -benchtime 3x -timeout 30m
	$(GO) test ./views -run '^$$' -bench . -benchtime 1x -timeout 60m

# Restart after kill -9 of a server holding 1,000,000 objects (README
# "Figures"): fills the catalogue with `datagate register` first, ~2 min.
bench-recovery:
	$(GO) test ./integration -run '^$$' -bench RecoverAfterKill1M -benchtime 1x -timeout 30m

# SFTP front-end beside OpenSSH's sshd + sftp-server and rclone serve sftp
# (README "SFTP and SCP"). Needs openssh-client, openssh-server, rclone; root.
bench-sftp:
	$(GO) test ./integration -run '^$$' -bench SFTPServers -benchtime 1x -timeout 30m

# FUSE front-end beside a plain directory and go-fuse's own loopback, in the
# same run (README "FUSE mount"). Needs /dev/fuse and root, curl; ~5 min.
bench-fuse:
	$(GO) test ./gateway/fuse -run '^$$' -bench . -benchtime 1x -timeout 60m

# S3 front-end (README "S3 API"): 4 KiB GET/HEAD at 32 connections and a
# 100,000-object ListObjectsV2 in process (client and server CPU together);
# then the real binary, its CPU from /proc: PUT single/multipart and GET
# with minio-go (S3_BENCH_MIB, default 256), a cached 1 GiB GET with curl
# beside its WebDAV front-end and nginx (S3_BENCH_GET_MIB), 4 KiB GET/HEAD
# with wrk and presigned URLs beside WebDAV and nginx. Needs curl, wrk,
# nginx for the last two (skipped without them).
bench-s3:
	$(GO) test ./gateway/s3 -run '^$$' -bench 'Small4KiB' -benchtime 20000x -timeout 30m
	$(GO) test ./gateway/s3 -run '^$$' -bench 'List100k' -benchtime 3x -timeout 30m
	$(GO) test ./integration -run '^$$' -bench 'S3Server' -benchtime 3x -timeout 30m

# WebDAV conformance: litmus (Debian package) against a freshly started
# server; known failures are listed in the README ("WebDAV").
litmus:
	$(GO) test ./integration -count=1 -run 'TestWebDAVLitmus' -v -timeout 10m

# WebDAV front-end beside rclone serve webdav and nginx on the same files
# (README "WebDAV"). Needs curl, wrk, rclone, nginx; WEBDAV_BENCH_MIB
# sizes the big GET (default 1024).
bench-webdav:
	$(GO) test ./integration -run '^$$' -bench WebDAVServers -benchtime 1x -timeout 30m

clean:
	rm -rf bin
