package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A new data directory is its owner's alone: objects/ holds pushed
// content in 0644 files, which every local user could read when the
// directory was made 0755. An existing directory keeps its mode.
func TestNewDataDirPrivate(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a.txt")
	os.WriteFile(src, []byte("private"), 0o644)
	for _, cmd := range [][]string{{"put", src}, {"demo"}} {
		data := filepath.Join(dir, cmd[0], "var")
		if out, err := runCmd(t, "", append([]string{"--data", data}, cmd...)...); err != nil {
			t.Fatal(out, err)
		}
		if st, err := os.Stat(data); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: new data directory %v %v, want 0700", cmd[0], st.Mode(), err)
		}
	}
	shared := filepath.Join(dir, "shared")
	os.Mkdir(shared, 0o750)
	os.Chmod(shared, 0o750)
	if out, err := runCmd(t, "", "--data", shared, "put", src); err != nil {
		t.Fatal(out, err)
	}
	if st, _ := os.Stat(shared); st.Mode().Perm() != 0o750 {
		t.Fatalf("existing data directory: %v, want its 0750 kept", st.Mode())
	}
}
