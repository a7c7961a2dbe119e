package main

// The suite: which `go test -bench` runs make the figures (steps), and
// which of their metrics make each row of the table, beside which
// reference and against which target (the issues' "Figures" sections).
// Benchmark and metric names are those the bench files report; a renamed
// metric shows up as a "no result" row and fails TestSuiteNamesExist.

// step is one `go test -run '^$' -bench` invocation.
type step struct {
	name      string // "-only" and the log file's name
	group     string // make bench-<group>
	pkg       string
	bench     string // -bench regexp
	benchtime string // "" = go test's default
	timeout   string
	// quick holds the environment of --quick (smaller sizes); a variable
	// already set in the environment wins over both.
	quick map[string]string
	// quickBenchtime replaces benchtime in --quick.
	quickBenchtime string
}

// knob is an environment variable a bench file reads to size its data;
// rows name it in their text ({objects}) so the table says what was run.
type knob struct {
	env  string
	def  int    // the bench file's default
	unit string // "" (a count) or "MiB"
}

var knobs = map[string]knob{
	"objects":   {"DG_BENCH_OBJECTS", 1_000_000, ""},
	"register":  {"DG_BENCH_REGISTER", 200_000, ""},
	"gc":        {"DG_BENCH_GC_OBJECTS", 1_000_000, ""},
	"recover":   {"DG_BENCH_RECOVER_OBJECTS", 1_000_000, ""},
	"replicate": {"DATAGATE_BENCH_REPLICATE_MIB", 512, "MiB"},
	"s3put":     {"S3_BENCH_MIB", 256, "MiB"},
	"s3get":     {"S3_BENCH_GET_MIB", 1024, "MiB"},
	"davget":    {"WEBDAV_BENCH_MIB", 1024, "MiB"},
	"sftpget":   {"SFTP_BENCH_MIB", 1024, "MiB"},
}

var steps = []step{
	{name: "index-register", group: "core", pkg: "./fs/index", bench: "^BenchmarkRegister1M$", benchtime: "1x", timeout: "60m",
		quick: map[string]string{"DG_BENCH_OBJECTS": "200000"}},
	{name: "index-lookup", group: "core", pkg: "./fs/index", bench: "^Benchmark(GetByID1M|Find1000Of1M)$", timeout: "60m",
		quick: map[string]string{"DG_BENCH_OBJECTS": "200000"}},
	{name: "store", group: "core", pkg: "./fs/store", bench: "^Benchmark(ReadCached1GiB|PlainRead1GiB|ReadCold256MiB|ReadColdVerified256MiB|PlainHTTPGet256MiB|Put256MiB)$", benchtime: "3x", timeout: "30m",
		quickBenchtime: "1x"},
	{name: "store-open", group: "core", pkg: "./fs/store", bench: "^BenchmarkOpenStored$", timeout: "10m"},
	{name: "replicate", group: "core", pkg: "./fs/store", bench: "^BenchmarkReplicateLocal$", benchtime: "3x", timeout: "30m",
		quick: map[string]string{"DATAGATE_BENCH_REPLICATE_MIB": "128"}, quickBenchtime: "1x"},
	{name: "collect", group: "core", pkg: "./fs/store", bench: "^BenchmarkCollect1M$", benchtime: "1x", timeout: "30m",
		quick: map[string]string{"DG_BENCH_GC_OBJECTS": "100000"}},
	{name: "recovery", group: "recovery", pkg: "./integration", bench: "^BenchmarkRecoverAfterKill1M$", benchtime: "1x", timeout: "30m",
		quick: map[string]string{"DG_BENCH_RECOVER_OBJECTS": "100000"}},
	{name: "views", group: "core", pkg: "./views", bench: ".", benchtime: "1x", timeout: "60m",
		quick: map[string]string{"DG_BENCH_OBJECTS": "200000", "DG_BENCH_REGISTER": "50000"}},
	{name: "fuse", group: "fuse", pkg: "./gateway/fuse", bench: ".", benchtime: "1x", timeout: "60m"},
	{name: "sftp", group: "sftp", pkg: "./integration", bench: "^BenchmarkSFTPServers$", benchtime: "1x", timeout: "30m",
		quick: map[string]string{"SFTP_BENCH_MIB": "256"}},
	{name: "s3-small", group: "s3", pkg: "./gateway/s3", bench: "^BenchmarkSmall4KiB$", benchtime: "20000x", timeout: "30m"},
	{name: "s3-list", group: "s3", pkg: "./gateway/s3", bench: "^BenchmarkList100k$", benchtime: "3x", timeout: "30m",
		quickBenchtime: "1x"},
	{name: "s3-server", group: "s3", pkg: "./integration", bench: "^BenchmarkS3Server$", benchtime: "3x", timeout: "30m",
		quick: map[string]string{"S3_BENCH_MIB": "64", "S3_BENCH_GET_MIB": "256"}, quickBenchtime: "1x"},
	{name: "webdav", group: "webdav", pkg: "./integration", bench: "^BenchmarkWebDAVServers$", benchtime: "1x", timeout: "30m",
		quick: map[string]string{"WEBDAV_BENCH_MIB": "256"}},
}

// metric names one value a benchmark reported: its name without the
// GOMAXPROCS suffix (a trailing '*' matches a prefix) and the unit as
// go test prints it.
type metric struct{ bench, unit string }

// show is how a row prints its values: the metric's value times scale,
// followed by unit.
type show struct {
	unit  string
	scale float64
}

// target is what the issue asks of a row: on the ratio (datagate over
// reference, in the row's unit) or on datagate's value; atLeast chooses ≥
// over ≤. The zero target means "report": no verdict.
type target struct {
	onRatio bool
	atLeast bool
	limit   float64
}

// row is one line of the table. Of dg, ref and ratio any two suffice: the
// third is derived (ratio = dg/ref), so a bench that reports a ratio and
// its native figure still gives all three.
type row struct {
	step       string
	area, what string
	dg, ref    *metric
	refName    string
	ratio      *metric
	show       show
	target     target
	needs      []string // tools the row needs (a missing one: "skipped: no X")
	refNeeds   []string // tools only the reference needs
}

func m(bench, unit string) *metric { return &metric{bench, unit} }

var (
	perSec   = show{"/s", 1}
	mbps     = show{"MB/s", 1}
	mibps    = show{"MiB/s", 1}
	seconds  = show{"s", 1}
	micros   = show{"µs", 1}
	millis   = show{"ms", 1}
	nsToMs   = show{"ms", 1e-6}
	nsToUs   = show{"µs", 1e-3}
	mib      = show{"MiB", 1}
	cpuPerGB = show{"CPU-s/GiB", 1}
	reqps    = show{"req/s", 1}
	iops     = show{"IOPS", 1}
	filesps  = show{"files/s", 1}
	times    = show{"×", 1}
	count    = show{"", 1}
)

func atLeast(v float64) target      { return target{atLeast: true, limit: v} }
func atMost(v float64) target       { return target{limit: v} }
func ratioAtLeast(v float64) target { return target{onRatio: true, atLeast: true, limit: v} }
func ratioAtMost(v float64) target  { return target{onRatio: true, limit: v} }

const (
	sftpB = "BenchmarkSFTPServers/"
	s3B   = "BenchmarkS3Server/"
	davB  = "BenchmarkWebDAVServers"
)

var rows = []row{
	// Object store core (issue #2)
	{step: "index-register", area: "core", what: "register {objects} objects, batches of 1,000", dg: m("BenchmarkRegister1M", "objects/s"), show: perSec, target: atLeast(50_000)},
	{step: "index-register", area: "core", what: "on-disk size of that catalogue", dg: m("BenchmarkRegister1M", "disk-MiB"), show: mib},
	{step: "index-register", area: "core", what: "peak RSS building it", dg: m("BenchmarkRegister1M", "peakRSS-MiB"), show: mib},
	{step: "index-lookup", area: "core", what: "lookup by id at {objects}, p99", dg: m("BenchmarkGetByID1M", "p99-µs"), show: micros, target: atMost(100)},
	{step: "index-lookup", area: "core", what: "find by one equality, 1,000 of {objects}", dg: m("BenchmarkFind1000Of1M", "ns/op"), show: nsToMs, target: atMost(10)},
	{step: "store", area: "core", what: "sequential read of a cached 1 GiB object through the Store", dg: m("BenchmarkReadCached1GiB", "MB/s"),
		ref: m("BenchmarkPlainRead1GiB", "MB/s"), refName: "plain file read", show: mbps, target: atLeast(2 << 30 / 1e6)},
	{step: "store", area: "core", what: "cold sequential read, loopback HTTP provider, 256 MiB", dg: m("BenchmarkReadCold256MiB", "MB/s"),
		ref: m("BenchmarkPlainHTTPGet256MiB", "MB/s"), refName: "plain http.Get", show: mbps, target: ratioAtLeast(0.8)},
	{step: "store", area: "core", what: "the same, registered with its SHA-256", dg: m("BenchmarkReadColdVerified256MiB", "MB/s"),
		ref: m("BenchmarkPlainHTTPGet256MiB", "MB/s"), refName: "plain http.Get", show: mbps},
	{step: "store", area: "core", what: "push of 256 MiB through the Store (MD5, SHA-256, fsync)", dg: m("BenchmarkPut256MiB", "MB/s"), show: mbps},
	{step: "store-open", area: "core", what: "open stored content for serving (sentinel check)", dg: m("BenchmarkOpenStored/stamped", "ns/op"),
		ref: m("BenchmarkOpenStored/plain-open", "ns/op"), refName: "open+close", show: nsToUs},
	{step: "replicate", area: "core", what: "replication of {replicate} to a second local store", dg: m("BenchmarkReplicateLocal/kernel", "replicate-MB/s"),
		ref: m("BenchmarkReplicateLocal/kernel", "plain-MB/s"), refName: "io.Copy + fsync", ratio: m("BenchmarkReplicateLocal/kernel", "replicate/plain"), show: mbps, target: ratioAtLeast(0.8)},
	{step: "collect", area: "core", what: "collection of {gc} expired objects", dg: m("BenchmarkCollect1M", "collect-s"), show: seconds, target: atMost(60)},
	{step: "collect", area: "core", what: "p99 stat by id during that collection", dg: m("BenchmarkCollect1M", "p99-µs"),
		ref: m("BenchmarkCollect1M", "idle-p99-µs"), refName: "same reader before", show: micros, target: atMost(1000)},
	{step: "recovery", area: "core", what: "restart after kill -9 right after registering {recover} objects", dg: m("BenchmarkRecoverAfterKill1M", "recover-after-fill-s"), show: seconds, target: atMost(5)},
	{step: "recovery", area: "core", what: "registering them through the admin API, before the kill", dg: m("BenchmarkRecoverAfterKill1M", "records/s"), show: perSec},
	{step: "recovery", area: "core", what: "restart after kill -9 of a server holding them", dg: m("BenchmarkRecoverAfterKill1M", "recover-s"), show: seconds, target: atMost(5)},

	// Views (issue #3)
	{step: "views", area: "views", what: "stat by path at {objects} objects, 3 views, p99", dg: m("BenchmarkStatByPath", "p99-µs"), show: micros, target: atMost(200)},
	{step: "views", area: "views", what: "listing a {objects/10}-child directory", dg: m("BenchmarkListBigDir", "ms/listing"), show: millis, target: atMost(300)},
	{step: "views", area: "views", what: "registration with 3 views vs none ({register} objects)", dg: m("BenchmarkRegisterViews", "objects/s-3views"),
		ref: m("BenchmarkRegisterViews", "objects/s-0views"), refName: "no views", ratio: m("BenchmarkRegisterViews", "ratio"), show: perSec, target: ratioAtLeast(0.5)},

	// FUSE (issue #4): every figure a ratio to a plain directory, same run.
	{step: "fuse", area: "fuse", what: "warm sequential read, cached 1 GiB object", dg: m("BenchmarkSeqRead1GiB", "mount-MB/s"),
		ref: m("BenchmarkSeqRead1GiB", "native-MB/s"), refName: "native", ratio: m("BenchmarkSeqRead1GiB", "x-native"), show: mbps, target: ratioAtLeast(0.8)},
	{step: "fuse", area: "fuse", what: "4 KiB random reads, cached object", dg: m("BenchmarkRandRead4K", "mount-IOPS"),
		ref: m("BenchmarkRandRead4K", "native-IOPS"), refName: "native", ratio: m("BenchmarkRandRead4K", "x-native"), show: iops, target: ratioAtLeast(0.5)},
	{step: "fuse", area: "fuse", what: "ls -f of 100,000 entries, cold mount vs warm native", ref: m("BenchmarkListDir100k", "native-ls-s"), refName: "native",
		ratio: m("BenchmarkListDir100k", "ls-cold-x"), show: seconds, target: ratioAtMost(2)},
	{step: "fuse", area: "fuse", what: "ls -f of 100,000 entries, steady", ref: m("BenchmarkListDir100k", "native-ls-s"), refName: "native",
		ratio: m("BenchmarkListDir100k", "ls-steady-x"), show: seconds, target: ratioAtMost(2)},
	{step: "fuse", area: "fuse", what: "ls -f of 100,000 entries, both cold (caches dropped)", ref: m("BenchmarkListDir100k", "native-ls-dropped-s"), refName: "native, cold",
		ratio: m("BenchmarkListDir100k", "ls-dropped-x"), show: seconds, target: ratioAtMost(2), needs: []string{"root"}},
	{step: "fuse", area: "fuse", what: "ls -f of 100,000 entries, cold, go-fuse loopback (floor)", ref: m("BenchmarkListDir100k", "native-ls-s"), refName: "native",
		ratio: m("BenchmarkListDir100k", "loopback-ls-x"), show: seconds},
	{step: "fuse", area: "fuse", what: "find over it, cold mount vs warm native (time ratio)", ratio: m("BenchmarkListDir100k", "find-cold-x"), refName: "native", show: times, target: ratioAtMost(2)},
	{step: "fuse", area: "fuse", what: "find over it, steady (time ratio)", ratio: m("BenchmarkListDir100k", "find-steady-x"), refName: "native", show: times, target: ratioAtMost(2)},
	{step: "fuse", area: "fuse", what: "find over it, both cold (time ratio)", ratio: m("BenchmarkListDir100k", "find-dropped-x"), refName: "native, cold", show: times,
		target: ratioAtMost(2), needs: []string{"root"}},
	{step: "fuse", area: "fuse", what: "stat of 10,000 files, cold mount vs warm native", ref: m("BenchmarkStat10k", "native-s"), refName: "native",
		ratio: m("BenchmarkStat10k", "cold-x"), show: seconds, target: ratioAtMost(3)},
	{step: "fuse", area: "fuse", what: "stat of 10,000 files, steady", ref: m("BenchmarkStat10k", "native-s"), refName: "native",
		ratio: m("BenchmarkStat10k", "steady-x"), show: seconds, target: ratioAtMost(3)},
	{step: "fuse", area: "fuse", what: "stat of 10,000 files, both cold (caches dropped)", ref: m("BenchmarkStat10k", "native-dropped-s"), refName: "native, cold",
		ratio: m("BenchmarkStat10k", "dropped-x"), show: seconds, target: ratioAtMost(3), needs: []string{"root"}},
	{step: "fuse", area: "fuse", what: "stat of 10,000 files, cold, go-fuse loopback (floor)", ref: m("BenchmarkStat10k", "native-s"), refName: "native",
		ratio: m("BenchmarkStat10k", "loopback-x"), show: seconds},
	{step: "fuse", area: "fuse", what: "cat of 10,000 small cached files, steady", dg: m("BenchmarkCatSmall10k", "steady-files/s"),
		ref: m("BenchmarkCatSmall10k", "native-files/s"), refName: "native", ratio: m("BenchmarkCatSmall10k", "steady-x"), show: filesps, target: ratioAtLeast(0.5)},
	{step: "fuse", area: "fuse", what: "cat of 10,000 small files, first pass", ref: m("BenchmarkCatSmall10k", "native-files/s"), refName: "native",
		ratio: m("BenchmarkCatSmall10k", "first-x"), show: filesps},
	{step: "fuse", area: "fuse", what: "cat of 10,000 small cached files, steady, read-only mount (no OPEN round trip)", dg: m("BenchmarkCatSmall10kReadOnly", "steady-files/s"),
		ref: m("BenchmarkCatSmall10kReadOnly", "native-files/s"), refName: "native", ratio: m("BenchmarkCatSmall10kReadOnly", "steady-x"), show: filesps, target: ratioAtLeast(0.5)},
	{step: "fuse", area: "fuse", what: "sequential write of 256 MiB, fsync at close", dg: m("BenchmarkWrite256MiB", "mount-MB/s"), refName: "native",
		ratio: m("BenchmarkWrite256MiB", "x-native"), show: mbps, target: ratioAtLeast(0.5)},
	{step: "fuse", area: "fuse", what: "cold sequential read, loopback HTTP provider, 256 MiB", dg: m("BenchmarkColdHTTP256MiB", "mount-MB/s"),
		ref: m("BenchmarkColdHTTP256MiB", "curl-MB/s"), refName: "curl", ratio: m("BenchmarkColdHTTP256MiB", "x-curl"), show: mbps, target: ratioAtLeast(0.8), needs: []string{"curl"}},

	// SFTP and SCP (issue #6), OpenSSH clients against each server.
	{step: "sftp", area: "sftp", what: "sftp get of {sftpget}", dg: m(sftpB+"datagate", "get-MiB/s"), ref: m(sftpB+"OpenSSH*", "get-MiB/s"), refName: "OpenSSH sftp-server",
		show: mibps, target: ratioAtLeast(1), refNeeds: []string{"/usr/sbin/sshd", "root"}},
	{step: "sftp", area: "sftp", what: "the same get", dg: m(sftpB+"datagate", "get-MiB/s"), ref: m(sftpB+"rclone*", "get-MiB/s"), refName: "rclone serve sftp",
		show: mibps, target: ratioAtLeast(2), refNeeds: []string{"rclone"}},
	{step: "sftp", area: "sftp", what: "server CPU per GiB got", dg: m(sftpB+"datagate", "cpu-s/GiB"), ref: m(sftpB+"OpenSSH*", "cpu-s/GiB"), refName: "OpenSSH sftp-server",
		show: cpuPerGB, refNeeds: []string{"/usr/sbin/sshd", "root"}},
	{step: "sftp", area: "sftp", what: "sftp put of 256 MiB", dg: m(sftpB+"datagate", "put-MiB/s"), ref: m(sftpB+"rclone*", "put-MiB/s"), refName: "rclone serve sftp",
		show: mibps, target: ratioAtLeast(1), refNeeds: []string{"rclone"}},
	{step: "sftp", area: "sftp", what: "scp get of {sftpget}", dg: m(sftpB+"datagate", "scp-MiB/s"), ref: m(sftpB+"OpenSSH*", "scp-MiB/s"), refName: "OpenSSH scp",
		show: mibps, target: ratioAtLeast(1), refNeeds: []string{"/usr/sbin/sshd", "root"}},
	{step: "sftp", area: "sftp", what: "connect + authenticate", dg: m(sftpB+"datagate", "connect-s"), ref: m(sftpB+"OpenSSH*", "connect-s"), refName: "OpenSSH sshd",
		show: seconds, target: atMost(0.2), refNeeds: []string{"/usr/sbin/sshd", "root"}},
	{step: "sftp", area: "sftp", what: "ls of a 10,000-entry directory", dg: m(sftpB+"datagate", "ls10k-s"), ref: m(sftpB+"OpenSSH*", "ls10k-s"), refName: "OpenSSH sftp-server",
		show: seconds, target: atMost(0.5), refNeeds: []string{"/usr/sbin/sshd", "root"}},
	{step: "sftp", area: "sftp", what: "100 sessions × 1 MiB, p99", dg: m(sftpB+"datagate", "p99-ms"), ref: m(sftpB+"OpenSSH*", "p99-ms"), refName: "OpenSSH sshd",
		show: millis, refNeeds: []string{"/usr/sbin/sshd", "root"}},
	{step: "sftp", area: "sftp", what: "100 sessions × 1 MiB, sessions that succeeded", dg: m(sftpB+"datagate", "sessions-ok"), show: count, target: atLeast(100)},

	// S3 (issue #7).
	{step: "s3-server", area: "s3", what: "GET of a cached {s3get} object, curl, presigned", dg: m(s3B+"GetBig", "s3-MiB/s"),
		ref: m(s3B+"GetBig", "webdav-MiB/s"), refName: "WebDAV front-end", show: mibps, target: ratioAtLeast(1), needs: []string{"curl", "wrk", "nginx"}},
	{step: "s3-server", area: "s3", what: "the same GET", dg: m(s3B+"GetBig", "s3-MiB/s"),
		ref: m(s3B+"GetBig", "nginx-MiB/s"), refName: "nginx", show: mibps, needs: []string{"curl", "wrk", "nginx"}},
	{step: "s3-server", area: "s3", what: "server CPU of that GET", dg: m(s3B+"GetBig", "s3-cpu-s/GiB"),
		ref: m(s3B+"GetBig", "nginx-cpu-s/GiB"), refName: "nginx", show: cpuPerGB, target: atMost(0.5), needs: []string{"curl", "wrk", "nginx"}},
	{step: "s3-server", area: "s3", what: "4 KiB GET, wrk, 32 connections, presigned", dg: m(s3B+"Small", "s3-GET-req/s"),
		ref: m(s3B+"Small", "nginx-GET-req/s"), refName: "nginx", show: reqps, target: atLeast(10_000), needs: []string{"curl", "wrk", "nginx"}},
	{step: "s3-server", area: "s3", what: "4 KiB HEAD, 32 connections, presigned", dg: m(s3B+"Small", "s3-HEAD-req/s"), show: reqps, target: atLeast(10_000), needs: []string{"curl", "wrk", "nginx"}},
	{step: "s3-server", area: "s3", what: "PutObject {s3put} single, minio-go", dg: m(s3B+"PutSingle", "MiB/s"), show: mibps, target: atLeast(400)},
	{step: "s3-server", area: "s3", what: "server CPU of that single PUT, until answered", dg: m(s3B+"PutSingle", "server-cpu-s/GiB"), show: cpuPerGB},
	{step: "s3-server", area: "s3", what: "server CPU of that single PUT, with the work after the answer (background MD5)", dg: m(s3B+"PutSingle", "server-cpu-s/GiB-settled"), show: cpuPerGB},
	{step: "s3-server", area: "s3", what: "PutObject {s3put} single, body's SHA-256 signed", dg: m(s3B+"PutSingleSHA256", "MiB/s"), show: mibps, target: atLeast(400)},
	{step: "s3-server", area: "s3", what: "PutObject {s3put} multipart, 8 MiB parts × 4", dg: m(s3B+"PutMultipart", "MiB/s"), show: mibps, target: atLeast(400)},
	{step: "s3-server", area: "s3", what: "server CPU of that multipart PUT, until answered", dg: m(s3B+"PutMultipart", "server-cpu-s/GiB"), show: cpuPerGB},
	{step: "s3-server", area: "s3", what: "server CPU of that multipart PUT, with the work after the answer", dg: m(s3B+"PutMultipart", "server-cpu-s/GiB-settled"), show: cpuPerGB},
	{step: "s3-server", area: "s3", what: "PutObject {s3put} multipart, 8 MiB parts × 4, each part's SHA-256 signed", dg: m(s3B+"PutMultipartSHA256", "MiB/s"), show: mibps, target: atLeast(400)},
	{step: "s3-server", area: "s3", what: "server CPU of that multipart PUT with signed parts, until answered", dg: m(s3B+"PutMultipartSHA256", "server-cpu-s/GiB"), show: cpuPerGB},
	{step: "s3-server", area: "s3", what: "GetObject {s3put}, minio-go", dg: m(s3B+"Get", "MiB/s"), show: mibps},
	{step: "s3-small", area: "s3", what: "4 KiB GetObject, 32 connections, in process", dg: m("BenchmarkSmall4KiB/GET", "req/s"), show: reqps, target: atLeast(10_000)},
	{step: "s3-small", area: "s3", what: "4 KiB HeadObject, 32 connections, in process", dg: m("BenchmarkSmall4KiB/HEAD", "req/s"), show: reqps, target: atLeast(10_000)},
	{step: "s3-list", area: "s3", what: "ListObjectsV2 of 100,000 objects, all pages", dg: m("BenchmarkList100k", "ms/listing"), show: millis, target: atMost(1000)},

	// WebDAV (issue #5), beside rclone serve webdav and nginx.
	{step: "webdav", area: "webdav", what: "GET of a cached {davget} object, curl", dg: m(davB, "datagate-get-MiB/s"), ref: m(davB, "rclone-get-MiB/s"), refName: "rclone serve webdav",
		show: mibps, target: ratioAtLeast(1), needs: []string{"curl", "wrk"}, refNeeds: []string{"rclone"}},
	{step: "webdav", area: "webdav", what: "the same GET", dg: m(davB, "datagate-get-MiB/s"), ref: m(davB, "nginx-get-MiB/s"), refName: "nginx",
		show: mibps, needs: []string{"curl", "wrk"}, refNeeds: []string{"nginx"}},
	{step: "webdav", area: "webdav", what: "server CPU of that GET", dg: m(davB, "datagate-get-cpu-s/GiB"), ref: m(davB, "rclone-get-cpu-s/GiB"), refName: "rclone serve webdav",
		show: cpuPerGB, target: atMost(0.5), needs: []string{"curl", "wrk"}, refNeeds: []string{"rclone"}},
	{step: "webdav", area: "webdav", what: "4 KiB GETs, wrk, 32 connections, Basic auth", dg: m(davB, "datagate-4KiB-req/s"), ref: m(davB, "rclone-4KiB-req/s"), refName: "rclone serve webdav",
		show: reqps, target: ratioAtLeast(3), needs: []string{"curl", "wrk"}, refNeeds: []string{"rclone"}},
	{step: "webdav", area: "webdav", what: "4 KiB GETs (aim: half of nginx's)", dg: m(davB, "datagate-4KiB-req/s"), ref: m(davB, "nginx-4KiB-req/s"), refName: "nginx",
		show: reqps, target: ratioAtLeast(0.5), needs: []string{"curl", "wrk"}, refNeeds: []string{"nginx"}},
	{step: "webdav", area: "webdav", what: "PROPFIND Depth 1 of 10,000 entries", dg: m(davB, "datagate-propfind10k-s"), ref: m(davB, "rclone-propfind10k-s"), refName: "rclone serve webdav",
		show: seconds, target: ratioAtMost(0.5), needs: []string{"curl", "wrk"}, refNeeds: []string{"rclone"}},
	{step: "webdav", area: "webdav", what: "PROPFIND Depth 1 of 100,000 entries, first byte", dg: m(davB, "datagate-propfind100k-first-ms"), ref: m(davB, "rclone-propfind100k-first-ms"), refName: "rclone serve webdav",
		show: millis, target: atMost(100), needs: []string{"curl", "wrk"}, refNeeds: []string{"rclone"}},
	{step: "webdav", area: "webdav", what: "PUT of 256 MiB, curl -T", dg: m(davB, "datagate-put-MiB/s"), ref: m(davB, "rclone-put-MiB/s"), refName: "rclone serve webdav",
		show: mibps, target: ratioAtLeast(2), needs: []string{"curl", "wrk"}, refNeeds: []string{"rclone"}},
	{step: "webdav", area: "webdav", what: "server CPU of that PUT", dg: m(davB, "datagate-put-cpu-s/GiB"), ref: m(davB, "rclone-put-cpu-s/GiB"), refName: "rclone serve webdav",
		show: cpuPerGB, needs: []string{"curl", "wrk"}, refNeeds: []string{"rclone"}},
}
