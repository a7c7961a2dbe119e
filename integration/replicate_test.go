package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/datagate/datagate/backends/sftp/sftptest"
)

// objStat is the part of `datagate stat` this file reads.
type objStat struct {
	SHA256 string   `json:"sha256"`
	Stores []string `json:"stores"`
}

func statObject(t *testing.T, c cli, id string) objStat {
	t.Helper()
	var st objStat
	if err := json.Unmarshal([]byte(c.ok("", "stat", id)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestKillDuringReplication: objects pushed to a server with two more
// stores — a local directory and an SFTP server that stops answering —
// are queued for copies; `datagate serve` is killed with SIGKILL while
// the SFTP copies hang. After a restart the queue resumes and completes,
// every acknowledged object reads back with its checksum, a read whose
// primary copy is lost is served from a replica, and fsck and verify find
// nothing wrong.
func TestKillDuringReplication(t *testing.T) {
	dataDir := t.TempDir()
	second := t.TempDir()
	remoteDir := t.TempDir()
	srv := sftptest.NewServer(t, remoteDir)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(srv.KnownHostsLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra := fmt.Sprintf(`stores:
  - name: second
    type: local
    root: %s
  - name: remote
    type: sftp
    address: %s
    user: %s
    password: %s
    known_hosts: %s
    timeout: 3s
    concurrency: 4
replicas: 3
`, second, srv.Addr, srv.User, srv.Password, kh)
	s := startServerWith(t, dataDir, extra)
	// Commands need the stores too: the same configuration.
	cfg := filepath.Join(t.TempDir(), "cli.yaml")
	os.WriteFile(cfg, []byte("data: "+dataDir+"\nlisten: {admin: ''}\n"+extra), 0o644)
	c := cli{t, []string{"--config", cfg}}

	srv.Stall(true)
	const n = 24
	rng := rand.New(rand.NewPCG(3, 24))
	ids := make([]string, n)
	sums := make([]string, n)
	for i := range n {
		b := make([]byte, 1+rng.IntN(300<<10))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		sum := sha256.Sum256(b)
		sums[i] = hex.EncodeToString(sum[:])
		src := filepath.Join(t.TempDir(), fmt.Sprintf("r%02d.bin", i))
		os.WriteFile(src, b, 0o644)
		ids[i] = idRE.FindString(c.ok("", "put", src))
		if ids[i] == "" {
			t.Fatalf("put %d printed no id", i)
		}
	}
	// The local copies are made; the SFTP ones hang.
	deadline := time.Now().Add(30 * time.Second)
	for {
		done := 0
		for _, id := range ids {
			st := statObject(t, c, id)
			if slices.Contains(st.Stores, "remote") {
				t.Fatalf("copy recorded on a stalled SFTP server: %v", st.Stores)
			}
			if slices.Contains(st.Stores, "second") {
				done++
			}
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d local copies after 30s\n%s", done, n, s.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.done
	srv.Stall(false)
	srv.Drop()

	s = startServerWith(t, dataDir, extra)
	deadline = time.Now().Add(60 * time.Second)
	for _, id := range ids {
		for !slices.Contains(statObject(t, c, id).Stores, "remote") {
			if time.Now().After(deadline) {
				t.Fatalf("queue did not resume: %s in %v\n%s", id, statObject(t, c, id).Stores, s.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i, id := range ids {
		st := statObject(t, c, id)
		if st.SHA256 != sums[i] || len(st.Stores) != 3 {
			t.Fatalf("object %d: %+v, want sha256 %s in 3 stores", i, st, sums[i])
		}
		got := sha256.Sum256([]byte(c.ok("", "get", id)))
		if hex.EncodeToString(got[:]) != sums[i] {
			t.Fatalf("object %d reads back wrong", i)
		}
		if b, err := os.ReadFile(filepath.Join(remoteDir, id[24:26], id)); err != nil || fmt.Sprintf("%x", sha256.Sum256(b)) != sums[i] {
			t.Fatalf("object %d: SFTP copy wrong or missing: %v", i, err)
		}
	}

	// A lost primary copy is read from a replica.
	lost := filepath.Join(dataDir, "objects", ids[0][24:26], ids[0])
	keep, err := os.ReadFile(lost)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(lost)
	if got := c.ok("", "get", ids[0]); !bytes.Equal([]byte(got), keep) {
		t.Fatal("read with the primary copy lost returned wrong bytes")
	}
	os.WriteFile(lost, keep, 0o644)

	s.stop(t)
	for _, cmd := range []string{"fsck", "verify"} {
		out, errs, code := c.run("", cmd)
		if code != 0 {
			t.Fatalf("%s after the crash: exit %d\n%s%s", cmd, code, out, errs)
		}
		if strings.Contains(out, "damage") && !strings.Contains(out, "0 damage") {
			t.Logf("%s: %s", cmd, out)
		}
	}
}

// TestFetchedContentOutlivesItsProvider: objects of an HTTP provider
// marked for prefetch are fetched with no reader asking, kept
// (keep_fetched) in the primary and a second store, and stay readable —
// with their checksums — once the provider is gone and the cache emptied,
// from either store alone.
func TestFetchedContentOutlivesItsProvider(t *testing.T) {
	files := map[string][]byte{}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 4 {
		b := make([]byte, 50_000+rng.IntN(200_000))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		files[fmt.Sprintf("f%d.bin", i)] = b
	}
	fsys := fstest.MapFS{}
	for name, b := range files {
		fsys[name] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	web := httptest.NewServer(http.FileServer(http.FS(fsys)))
	defer web.Close()
	dataDir := t.TempDir()
	second := t.TempDir()
	extra := fmt.Sprintf(`providers:
  web: {type: http, url: "%s/", retries: 1, timeout: 2s}
stores:
  - {name: second, type: local, root: %s}
replicas: 2
keep_fetched: true
prefetch:
  - {provider: web, priority: high}
`, web.URL, second)
	cfg := filepath.Join(t.TempDir(), "cli.yaml")
	os.WriteFile(cfg, []byte("data: "+dataDir+"\nlisten: {admin: ''}\n"+extra), 0o644)
	c := cli{t, []string{"--config", cfg}}
	s := startServerWith(t, dataDir, extra)
	var nd strings.Builder
	for name := range files {
		fmt.Fprintf(&nd, `{"name":%q,"meta":{"f":%q},"location":{"provider":"web","path":%q}}`+"\n", name, name, name)
	}
	c.ok(nd.String(), "register")
	ids := map[string]string{}
	for name := range files {
		ids[name] = idRE.FindString(c.ok("", "find", "f="+name))
	}
	deadline := time.Now().Add(60 * time.Second)
	for name, id := range ids {
		for {
			st := statObject(t, c, id)
			if slices.Contains(st.Stores, "second") && slices.Contains(st.Stores, "primary") {
				sum := sha256.Sum256(files[name])
				if st.SHA256 != hex.EncodeToString(sum[:]) {
					t.Fatalf("%s: recorded sha256 %s", name, st.SHA256)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not prefetched and kept: %+v\n%s", name, st, s.stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	web.Close()
	check := func(what string) {
		t.Helper()
		for name, id := range ids {
			if got := c.ok("", "get", id); got != string(files[name]) {
				t.Fatalf("%s: %s reads back wrong (%d bytes)", what, name, len(got))
			}
		}
	}
	// Provider gone, cache emptied: from the stores.
	s.stop(t)
	os.RemoveAll(filepath.Join(dataDir, "cache"))
	s = startServerWith(t, dataDir, extra)
	check("provider gone")
	// And from the second store alone.
	s.stop(t)
	os.RemoveAll(filepath.Join(dataDir, "cache"))
	for _, id := range ids {
		matches, _ := filepath.Glob(filepath.Join(dataDir, "objects", id[24:26], id+"-*"))
		if len(matches) != 1 {
			t.Fatalf("no primary copy of %s: %v", id, matches)
		}
		os.Remove(matches[0])
	}
	s = startServerWith(t, dataDir, extra)
	check("provider and primary copies gone")
	s.stop(t)
}
