package index

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/datagate/datagate/fs"
)

// TestKilledAfterAck: a child process (this test binary again) writes to
// an index and reports each write once the call has returned; the parent
// kills it with SIGKILL right after a report and reopens the index. Every
// acknowledged write must be there: Badger runs without SyncWrites, so
// this checks that its log replay restores what the index acknowledged.
// (A kill keeps the page cache; what a power cut would lose without the
// syncs is beyond a test's reach.) Two rounds: the second child starts
// from the first one's replayed index.
func TestKilledAfterAck(t *testing.T) {
	if dir := os.Getenv("DG_INDEX_CRASH_DIR"); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	live := map[fs.ID]string{} // id → expected value of meta "v"
	gone := map[fs.ID]bool{}
	for round := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestKilledAfterAck$")
		cmd.Env = append(os.Environ(), "DG_INDEX_CRASH_DIR="+dir, "DG_INDEX_CRASH_ROUND="+strconv.Itoa(round))
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		acks := 0
		var pending []string // the write announced and not yet acknowledged
		read := func() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				return // go test's own output
			}
			if f[0] == "try" {
				pending = f[1:]
				return
			}
			id, err := fs.ParseID(f[1])
			if err != nil {
				return
			}
			switch f[0] {
			case "put":
				live[id] = f[2]
			case "del":
				delete(live, id)
				gone[id] = true
			default:
				return
			}
			pending = nil
			acks++
		}
		for acks < 300 && sc.Scan() {
			read()
		}
		// Right after the last acknowledgement read. What the child
		// printed before dying is acknowledged too.
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for sc.Scan() {
			read()
		}
		cmd.Wait()
		cancel()
		if acks < 300 {
			t.Fatalf("round %d: child stopped after %d acknowledgements: %v", round, acks, sc.Err())
		}
		// The write in flight at the kill may or may not have happened.
		var inFlight fs.ID
		if len(pending) >= 2 {
			inFlight, _ = fs.ParseID(pending[1])
		}

		ix := openTest(t, dir, nil)
		for id, v := range live {
			if id == inFlight {
				continue
			}
			o, err := ix.Get(context.Background(), id)
			if err != nil {
				t.Fatalf("round %d: acknowledged object %s lost: %v", round, id, err)
			}
			if o.Meta["v"] != v {
				t.Fatalf("round %d: object %s has v=%q, acknowledged %q", round, id, o.Meta["v"], v)
			}
		}
		for id := range gone {
			if _, err := ix.Get(context.Background(), id); fs.KindOf(err) != fs.NotExist {
				t.Fatalf("round %d: acknowledged delete of %s undone: %v", round, id, err)
			}
		}
		if inFlight != (fs.ID{}) {
			// Whichever way it went, it is now the state to keep.
			o, err := ix.Get(context.Background(), inFlight)
			switch {
			case err == nil:
				live[inFlight] = o.Meta["v"]
			case fs.KindOf(err) == fs.NotExist:
				delete(live, inFlight)
				gone[inFlight] = true
			default:
				t.Fatal(err)
			}
		}
		// No counts checkpoint after a kill: counted again, exactly.
		if ix.Counts().Exact {
			t.Errorf("round %d: object counts claimed exact after a kill", round)
		}
		if err := ix.RebuildCounts(context.Background()); err != nil {
			t.Fatal(err)
		}
		var n int64
		ix.Walk(context.Background(), fs.ID{}, func(*fs.Object) error { n++; return nil })
		if c := ix.Counts(); !c.Exact || c.Objects != n {
			t.Errorf("round %d: counts %+v after the rebuild, a scan finds %d objects", round, c, n)
		}
		if err := ix.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d live, %d deleted objects as acknowledged", round, len(live), len(gone))
	}
}

// crashChild writes until killed: batches of registrations, updates and
// deletes, printing "put <id> <v>" or "del <id>" once each call returned,
// and "try put|del <id>" before an update or delete of a known object.
func crashChild(dir string) {
	ix, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	round := os.Getenv("DG_INDEX_CRASH_ROUND")
	var prev []*fs.Object
	for i := 0; ; i++ {
		batch := make([]*fs.Object, 20)
		for j := range batch {
			batch[j] = newObj(fmt.Sprintf("r%s-%d-%d", round, i, j), map[string]string{"v": "0", "set": strconv.Itoa(i)})
			batch[j].Source = fs.Location{Provider: "p", Path: fmt.Sprintf("r%s/%d/%d", round, i, j)}
		}
		if _, err := ix.Register(ctx, batch); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		for _, o := range batch {
			fmt.Printf("put %s 0\n", o.ID)
		}
		if len(prev) > 0 {
			v := strconv.Itoa(i)
			fmt.Printf("try put %s %s\n", prev[0].ID, v)
			if _, err := ix.Update(ctx, prev[0].ID, func(o *fs.Object) error { o.Meta["v"] = v; return nil }); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			fmt.Printf("put %s %s\n", prev[0].ID, v)
			fmt.Printf("try del %s\n", prev[1].ID)
			if _, err := ix.Delete(ctx, prev[1].ID); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			fmt.Printf("del %s\n", prev[1].ID)
		}
		prev = batch
	}
}

// TestSyncIsShared: writers that commit while a sync runs share the next
// one, so many concurrent durable writes cost far fewer syncs.
func TestSyncIsShared(t *testing.T) {
	ix := openTest(t, t.TempDir(), nil)
	defer ix.Close()
	ctx := context.Background()
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := ix.Insert(ctx, newObj(fmt.Sprintf("w%d-%d", w, i), nil)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	n := ix.sync.rounds.Load()
	t.Logf("%d durable inserts, %d syncs", writers*each, n)
	if n == 0 || n >= writers*each*3/4 {
		t.Fatalf("%d syncs for %d concurrent durable inserts: not grouped", n, writers*each)
	}
}

// TestSyncAfterClose: a write after Close fails instead of hanging.
func TestSyncAfterClose(t *testing.T) {
	ix := openTest(t, t.TempDir(), nil)
	ix.Close()
	done := make(chan error, 1)
	go func() { done <- ix.Sync() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Sync after Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sync after Close hangs")
	}
}
