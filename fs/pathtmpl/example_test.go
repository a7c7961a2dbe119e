package pathtmpl_test

import (
	"fmt"

	"github.com/datagate/datagate/fs/pathtmpl"
)

func Example() {
	t := pathtmpl.MustParse("{date}/{type}/{name}.{ext}")

	p, _ := t.Render(map[string]string{"date": "2024-01-01", "type": "an/fc", "name": "t2m", "ext": "grib"})
	fmt.Println(p)

	meta, err := t.Match("2024-01-01/an%2Ffc/archive.tar.gz")
	fmt.Println(meta, err)

	fmt.Println(t.Prefix(map[string]string{"date": "2024-01-01"}))

	_, err = t.Match("2024-01-01/an")
	fmt.Println(err)
	// Output:
	// 2024-01-01/an%2Ffc/t2m.grib
	// map[date:2024-01-01 ext:gz name:archive.tar type:an/fc] <nil>
	// 2024-01-01
	// pathtmpl: path "2024-01-01/an" does not match template "{date}/{type}/{name}.{ext}": fewer segments than the template
}

func ExampleEscapeSegment() {
	for _, v := range []string{"plain text", "a/b", "100%", "", ".", "..", "\xff"} {
		fmt.Printf("%q -> %s\n", v, pathtmpl.EscapeSegment(v))
	}
	// Output:
	// "plain text" -> plain text
	// "a/b" -> a%2Fb
	// "100%" -> 100%25
	// "" -> %-
	// "." -> %2E
	// ".." -> %2E%2E
	// "\xff" -> %FF
}
