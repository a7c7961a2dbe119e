package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What a user of the aws CLI, rclone and s3cmd met in a first hour with
// the S3 front-end, against the real binary.

// s3Tool runs one client command with alice's keys against srv and
// returns its combined output and error.
type s3Tool func(args ...string) (string, error)

func awsTool(t *testing.T, srv *s3Server) s3Tool {
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("aws CLI not installed (Debian package awscli)")
	}
	home := t.TempDir()
	cfg := filepath.Join(home, "config")
	os.WriteFile(cfg, []byte("[default]\ns3 =\n    signature_version = s3v4\n"), 0o600)
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "aws", append([]string{"--endpoint-url", "http://" + srv.addr}, args...)...)
		cmd.Env = append(envWithout("AWS_"), "HOME="+home, "AWS_ACCESS_KEY_ID="+s3Alice, "AWS_SECRET_ACCESS_KEY="+s3AliceSecret,
			"AWS_DEFAULT_REGION=us-east-1", "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "none"),
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

func rcloneTool(t *testing.T, srv *s3Server) s3Tool {
	if _, err := exec.LookPath("rclone"); err != nil {
		t.Skip("rclone not installed")
	}
	conf := filepath.Join(t.TempDir(), "none.conf")
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "rclone", args...)
		cmd.Env = append(envWithout("AWS_"), "RCLONE_CONFIG="+conf,
			"RCLONE_CONFIG_DG_TYPE=s3", "RCLONE_CONFIG_DG_PROVIDER=Other", "RCLONE_CONFIG_DG_ENV_AUTH=false",
			"RCLONE_CONFIG_DG_ACCESS_KEY_ID="+s3Alice, "RCLONE_CONFIG_DG_SECRET_ACCESS_KEY="+s3AliceSecret,
			"RCLONE_CONFIG_DG_ENDPOINT=http://"+srv.addr, "RCLONE_CONFIG_DG_REGION=us-east-1", "RCLONE_CONFIG_DG_FORCE_PATH_STYLE=true")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

func s3cmdTool(t *testing.T, srv *s3Server) s3Tool {
	if _, err := exec.LookPath("s3cmd"); err != nil {
		t.Skip("s3cmd not installed")
	}
	cfg := filepath.Join(t.TempDir(), "s3cfg")
	os.WriteFile(cfg, []byte(fmt.Sprintf("[default]\naccess_key = %s\nsecret_key = %s\nhost_base = %s\nhost_bucket = %s\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n",
		s3Alice, s3AliceSecret, srv.addr, srv.addr)), 0o600)
	return func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "s3cmd", append([]string{"-c", cfg}, args...)...).CombinedOutput()
		return string(out), err
	}
}

// must runs a tool command that has to succeed.
func must(t *testing.T, srv *s3Server, tool s3Tool, args ...string) string {
	t.Helper()
	out, err := tool(args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, srv.stderr)
	}
	return out
}

// File names with "%" (and spaces, "+", "&", "?", unicode) go up with
// aws s3 sync and rclone copy and come back the same: they were refused
// as malformed escapes (InvalidArgument).
func TestS3ExplorePercentNames(t *testing.T) {
	srv := startS3Server(t, s3Config(t.TempDir(), s3FreePort(t)))
	aws, rclone := awsTool(t, srv), rcloneTool(t, srv)
	src := t.TempDir()
	names := []string{"50%.txt", "sp ace/h é%20x.txt", "sp ace/a+b&c=d?.txt", "100%25/deep %/f"}
	for _, n := range names {
		os.MkdirAll(filepath.Join(src, filepath.Dir(n)), 0o755)
		os.WriteFile(filepath.Join(src, n), []byte(n), 0o644)
	}
	must(t, srv, aws, "s3", "sync", "--no-progress", src, "s3://inbox/aws/")
	out := must(t, srv, aws, "s3", "ls", "--recursive", "s3://inbox/aws/")
	for _, n := range names {
		if !strings.Contains(out, "aws/"+n) {
			t.Errorf("aws s3 ls lacks %q:\n%s", n, out)
		}
	}
	if out := must(t, srv, aws, "s3", "sync", "--no-progress", src, "s3://inbox/aws/"); strings.Contains(out, "upload:") {
		t.Errorf("second sync uploaded again:\n%s", out)
	}
	dst := t.TempDir()
	must(t, srv, aws, "s3", "sync", "--no-progress", "s3://inbox/aws/", dst)
	for _, n := range names {
		if b, err := os.ReadFile(filepath.Join(dst, n)); err != nil || string(b) != n {
			t.Errorf("synced back %q: %q %v", n, b, err)
		}
	}
	must(t, srv, rclone, "copy", src, "dg:inbox/rc")
	must(t, srv, rclone, "check", src, "dg:inbox/rc")
	srv.stop(t)
}

// Deleting folders: "aws s3 rm s3://b/dir/" of a directory implied by its
// keys succeeds and deletes nothing; s3cmd del --recursive removes a tree
// with folder objects in it (the folders were BucketNotEmpty); the aws
// CLI lists a folder object under its own prefix.
func TestS3ExploreFolders(t *testing.T) {
	srv := startS3Server(t, s3Config(t.TempDir(), s3FreePort(t)))
	aws, s3cmd := awsTool(t, srv), s3cmdTool(t, srv)
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("f\n"), 0o644)
	must(t, srv, aws, "s3", "cp", "--no-progress", f, "s3://inbox/implied/f")
	if out := must(t, srv, aws, "s3", "rm", "s3://inbox/implied/"); strings.Contains(out, "failed") {
		t.Errorf("aws s3 rm of an implied folder:\n%s", out)
	}
	if out := must(t, srv, aws, "s3", "ls", "--recursive", "s3://inbox/implied/"); !strings.Contains(out, "implied/f") {
		t.Errorf("the key under it went too:\n%s", out)
	}
	for _, k := range []string{"tree/", "tree/sub/"} {
		must(t, srv, aws, "s3api", "put-object", "--bucket", "inbox", "--key", k)
	}
	for _, k := range []string{"tree/a", "tree/sub/b"} {
		must(t, srv, aws, "s3api", "put-object", "--bucket", "inbox", "--key", k, "--body", f)
	}
	if out := must(t, srv, aws, "s3api", "list-objects-v2", "--bucket", "inbox", "--prefix", "tree/", "--delimiter", "/"); !strings.Contains(out, `"Key": "tree/"`) {
		t.Errorf("the folder object is not listed under its prefix:\n%s", out)
	}
	must(t, srv, s3cmd, "del", "--recursive", "s3://inbox/tree/")
	if out := must(t, srv, aws, "s3api", "list-objects-v2", "--bucket", "inbox", "--prefix", "tree"); strings.Contains(out, `"Key"`) {
		t.Errorf("left after s3cmd del --recursive:\n%s", out)
	}
	srv.stop(t)
}

// aws s3api put-object --if-none-match '*' takes a key once (a lock file):
// the second is PreconditionFailed and the first content stays. Both
// were stored before.
func TestS3ExploreConditionalPut(t *testing.T) {
	srv := startS3Server(t, s3Config(t.TempDir(), s3FreePort(t)))
	aws := awsTool(t, srv)
	if out, _ := aws("s3api", "put-object", "help"); !strings.Contains(out, "if-none-match") {
		t.Skip("this aws CLI has no --if-none-match for put-object")
	}
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	os.WriteFile(one, []byte("one"), 0o644)
	os.WriteFile(two, []byte("two"), 0o644)
	must(t, srv, aws, "s3api", "put-object", "--bucket", "inbox", "--key", "locks/state.tflock", "--body", one, "--if-none-match", "*")
	out, err := aws("s3api", "put-object", "--bucket", "inbox", "--key", "locks/state.tflock", "--body", two, "--if-none-match", "*")
	if err == nil || !strings.Contains(out, "PreconditionFailed") {
		t.Errorf("second lock taker: %v\n%s", err, out)
	}
	got := filepath.Join(dir, "got")
	must(t, srv, aws, "s3api", "get-object", "--bucket", "inbox", "--key", "locks/state.tflock", got)
	if b, _ := os.ReadFile(got); string(b) != "one" {
		t.Errorf("lock content %q, want one", b)
	}
	srv.stop(t)
}

// aws s3api delete-object-tagging deleted the object; get-object-tagging
// (which aws CLI v2 calls to copy large objects) was NotImplemented.
func TestS3ExploreTagging(t *testing.T) {
	srv := startS3Server(t, s3Config(t.TempDir(), s3FreePort(t)))
	aws := awsTool(t, srv)
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, []byte("f\n"), 0o644)
	must(t, srv, aws, "s3api", "put-object", "--bucket", "inbox", "--key", "tags/a", "--body", f)
	must(t, srv, aws, "s3api", "delete-object-tagging", "--bucket", "inbox", "--key", "tags/a")
	if out := must(t, srv, aws, "s3api", "get-object-tagging", "--bucket", "inbox", "--key", "tags/a"); !strings.Contains(out, `"TagSet": []`) {
		t.Errorf("get-object-tagging:\n%s", out)
	}
	must(t, srv, aws, "s3api", "head-object", "--bucket", "inbox", "--key", "tags/a")
	srv.stop(t)
}

// s3fs (FUSE over S3, Debian package s3fs) mounts a bucket: a file with
// "%" in its name is written, appended to, renamed, chmod-ed and
// touched, a tree is renamed and removed with rm -rf, and what is left
// is what the aws CLI lists.
func TestS3ExploreS3fs(t *testing.T) {
	needTool(t, "s3fs", "fusermount")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no /dev/fuse in CI")
		}
		t.Skip("no /dev/fuse: cannot mount")
	}
	srv := startS3Server(t, s3Config(t.TempDir(), s3FreePort(t)))
	aws := awsTool(t, srv)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(s3Alice+":"+s3AliceSecret+"\n"), 0o600)
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "s3fs", "inbox", mnt, "-o", "passwd_file="+pw, "-o", "url=http://"+srv.addr,
		"-o", "use_path_request_style", "-o", "endpoint=us-east-1", "-o", "sigv4", "-o", "stat_cache_expire=1").CombinedOutput()
	if err != nil {
		t.Fatalf("s3fs: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("fusermount", "-u", mnt).Run() })
	waitMounted(t, mnt, true, srv.stderr)
	sh := func(script string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-ec", script)
		cmd.Dir = mnt
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s\nserver log:\n%s", script, err, out, srv.stderr)
		}
		return string(out)
	}
	sh(`mkdir d && echo hi > 'd/a 50%.txt' && echo more >> 'd/a 50%.txt'`)
	sh(`mv 'd/a 50%.txt' 'd/b 100%.txt' && chmod 600 'd/b 100%.txt' && touch -d 2020-02-02 'd/b 100%.txt'`)
	if got := sh(`cat 'd/b 100%.txt'; stat -c '%a %Y' 'd/b 100%.txt'`); got != "hi\nmore\n600 1580601600\n" {
		t.Errorf("after rename, chmod, touch: %q", got)
	}
	sh(`mkdir -p d/x/y && echo deep > d/x/y/f && mv d/x d/x2 && test "$(cat d/x2/y/f)" = deep`)
	if out := must(t, srv, aws, "s3", "ls", "--recursive", "s3://inbox/d/"); !strings.Contains(out, "d/b 100%.txt") || !strings.Contains(out, "d/x2/y/f") || strings.Contains(out, "d/x/") {
		t.Errorf("aws s3 ls after the s3fs work:\n%s", out)
	}
	sh(`rm -rf d`)
	if out := must(t, srv, aws, "s3api", "list-objects-v2", "--bucket", "inbox", "--prefix", "d"); strings.Contains(out, `"Key"`) {
		t.Errorf("left after rm -rf:\n%s", out)
	}
	if out, err := exec.Command("fusermount", "-u", mnt).CombinedOutput(); err != nil {
		t.Errorf("fusermount -u: %v %s", err, out)
	}
	srv.stop(t)
}
