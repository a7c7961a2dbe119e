package pathtmpl

import "testing"

var (
	benchTmpl = MustParse("by-date/{date}/{type}/{param}_{step}h.grib")
	benchMeta = map[string]string{"date": "2024-01-01", "type": "an", "param": "t2m", "step": "06", "stream": "oper"}
	benchPath = "by-date/2024-01-01/an/t2m_06h.grib"
	sink      string
	sinkMap   map[string]string
)

func BenchmarkRender(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		p, ok := benchTmpl.Render(benchMeta)
		if !ok {
			b.Fatal("render failed")
		}
		sink = p
	}
}

func BenchmarkRenderEscaped(b *testing.B) {
	tp := MustParse("{date}/{name}")
	meta := map[string]string{"date": "2024/01/01", "name": "100% é\x00"}
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = tp.Render(meta)
	}
}

func BenchmarkRenderRest(b *testing.B) {
	tp := MustParse("uploads/{path...}")
	meta := map[string]string{"path": "projects/2024/run-12/output.nc"}
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = tp.Render(meta)
	}
}

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := benchTmpl.Match(benchPath)
		if err != nil {
			b.Fatal(err)
		}
		sinkMap = m
	}
}

func BenchmarkMatchPlain(b *testing.B) {
	tp := MustParse("{date}/{type}/{name}")
	b.ReportAllocs()
	for b.Loop() {
		sinkMap, _ = tp.Match("2024-01-01/an/t2m.grib")
	}
}

func BenchmarkMatchRest(b *testing.B) {
	tp := MustParse("uploads/{path...}")
	b.ReportAllocs()
	for b.Loop() {
		sinkMap, _ = tp.Match("uploads/projects/2024/run-12/output.nc")
	}
}

func BenchmarkEscapeSegmentClean(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = EscapeSegment("t2m_06h.grib")
	}
}

func BenchmarkUnescapeSegment(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink, _ = UnescapeSegment("100%25 %C3%00")
	}
}

// A mixed segment built to make a naive splitter backtrack exponentially.
func BenchmarkMatchMixedWorstCase(b *testing.B) {
	tp := MustParse("{a}.{b}.{c}.{d}")
	seg := make([]byte, 0, 1024)
	for len(seg) < 1000 {
		seg = append(seg, "x."...)
	}
	seg = append(seg, '%') // no split is valid
	path := string(seg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tp.Match(path); err == nil {
			b.Fatal("matched")
		}
	}
}
