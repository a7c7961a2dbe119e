package sigv4

import (
	"net/http/httptest"
	"testing"
)

func TestCanonicalURI(t *testing.T) {
	for target, want := range map[string]string{
		"/":                          "/",
		"/bucket/key":                "/bucket/key",
		"/bucket/a%20b+c":            "/bucket/a%20b%2Bc",
		"/bucket/test$file.text":     "/bucket/test%24file.text",
		"/bucket/test%24file.text":   "/bucket/test%24file.text",
		"/bucket/a%2Fb/c":            "/bucket/a%2Fb/c", // an escaped slash stays one
		"/bucket//x/../y/./z":        "/bucket//x/../y/./z",
		"/bucket/%E2%82%AC%7E%21%2A": "/bucket/%E2%82%AC~%21%2A",
	} {
		r := httptest.NewRequest("GET", target, nil)
		if got := string(appendCanonicalURI(nil, r)); got != want {
			t.Errorf("%s: %s, want %s", target, got, want)
		}
	}
}

func TestCanonicalQuery(t *testing.T) {
	for raw, want := range map[string]string{
		"":                             "",
		"acl":                          "acl=",
		"b=2&a=1&a=0":                  "a=0&a=1&b=2",
		"prefix=a+b&delimiter=%2F":     "delimiter=%2F&prefix=a%20b",
		"k=%7E%21&&Z=1":                "Z=1&k=~%21",
		"x=%zz":                        "x=%25zz",
		"X-Amz-Signature=abc&uploads=": "X-Amz-Signature=abc&uploads=",
	} {
		got, err := canonicalQuery(raw, false)
		if err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", raw, got, err, want)
		}
	}
	got, _ := canonicalQuery("X-Amz-Signature=abc&uploads=", true)
	if got != "uploads=" {
		t.Errorf("presigned: %q", got)
	}
	if _, err := canonicalQuery("a=1;b=2", false); err == nil {
		t.Error("semicolon accepted")
	}
}

func canonicalQuery(raw string, presigned bool) (string, error) {
	q, err := parseQuery(raw)
	if err != nil {
		return "", err
	}
	return string(appendCanonicalQuery(nil, q, presigned)), nil
}

func TestCanonicalHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"  a   b  c  ": "a b c",
		"a\t\tb":       "a b",
		"":             "",
		"x":            "x",
	} {
		if got := string(appendTrimmed(nil, in)); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestKeyCacheBounded(t *testing.T) {
	var c keyCache
	k1 := c.get("secret", "20260101", "r", "s3")
	if c.get("secret", "20260101", "r", "s3") != k1 {
		t.Fatal("cache returned another key")
	}
	if string(c.get("secret2", "20260101", "r", "s3").key) == string(k1.key) {
		t.Fatal("another secret, same key")
	}
	for i := range keyCacheMax + 10 {
		c.get("secret", string(rune('a'+i%26))+string(rune(i)), "r", "s3")
	}
	if len(c.m) > keyCacheMax {
		t.Fatalf("cache holds %d keys", len(c.m))
	}
}
