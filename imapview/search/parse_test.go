package search

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ALL", "ALL"},
		{`from alice subject "q3 budget"`, `FROM alice SUBJECT "q3 budget"`},
		{"OR FROM a TO b", "OR FROM a TO b"},
		{"NOT (SEEN FLAGGED)", "NOT (SEEN FLAGGED)"},
		{"SINCE 1-Feb-2024 BEFORE 2024-03-01", "SINCE 1-Feb-2024 BEFORE 1-Mar-2024"},
		{"CHARSET UTF-8 BODY \"élan vital\"", `BODY "élan vital"`},
		{"UID 1:5,9 LARGER 100 SMALLER 2000", "UID 1:5,9 LARGER 100 SMALLER 2000"},
		{"UNSEEN KEYWORD $Privileged UNKEYWORD $Reviewed", "NOT SEEN KEYWORD $Privileged NOT KEYWORD $Reviewed"},
		{"HEADER X-Mailer \"\"", `HEADER X-Mailer ""`},
		{"TEXT \"a \\\"quoted\\\" word\"", `TEXT "a \"quoted\" word"`},
		{"RECENT", "NOT ALL"},
		{"SENTON 2-Mar-2024", "SENTON 2-Mar-2024"},
	} {
		n, err := Parse(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if got := n.String(); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.in, got, tt.want)
		}
		back, err := Parse(n.String())
		if err != nil || back.String() != n.String() {
			t.Errorf("%q does not read back: %v", n.String(), err)
		}
	}
	for _, bad := range []string{"", "FROM", "SINCE 31-Feb-2024", "UID 0", "NOT", "(ALL", "FOO", "CHARSET KOI8-R ALL", `"unterminated`,
		strings.Repeat("NOT ", 100) + "ALL", strings.Repeat("(", 100) + "ALL" + strings.Repeat(")", 100)} {
		if _, err := Parse(bad); !errors.Is(err, ErrSyntax) {
			t.Errorf("%q: %v, want a syntax error", bad, err)
		}
	}
}

func TestCompile(t *testing.T) {
	n, _ := Parse(`FROM "a%b_c" BODY "Quarterly budget!" NOT SEEN UID 3:4`)
	c, err := Compile(n, Options{SearchKey: make([]byte, 32), User: "u", UIDExpr: "f.uid"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.FullText || len(c.Phrases) != 1 || c.Phrases[0].Value != "Quarterly budget!" {
		t.Fatalf("compiled %+v", c)
	}
	if !strings.Contains(c.Where, "f.uid BETWEEN") || !strings.Contains(c.Where, "fts MATCH") {
		t.Fatalf("where %s", c.Where)
	}
	if c.Args[0] != `%a\%b\_c%` {
		t.Fatalf("LIKE pattern %q", c.Args[0])
	}
	if _, err := Compile(&Node{Kind: Not, Kids: []*Node{deep(MaxDepth + 2)}}, Options{}); err == nil {
		t.Fatal("too deep compiled")
	}
}

func deep(n int) *Node {
	if n == 0 {
		return &Node{Kind: All}
	}
	return &Node{Kind: Not, Kids: []*Node{deep(n - 1)}}
}

func TestConfirmNormalize(t *testing.T) {
	if normalize("  Quarterly\r\n\tBUDGET  review ") != "quarterly budget review" {
		t.Fatal(normalize("  Quarterly\r\n\tBUDGET  review "))
	}
	if !headerHas([]byte("Subject: =?utf-8?q?caf=C3=A9?=\r\nX-A: one\r\n two\r\n\r\n"), "x-a", "ONE TWO") {
		t.Fatal("folded field")
	}
	if !headerHas([]byte("Subject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"), "subject", "café") {
		t.Fatal("encoded word")
	}
	if headerHas([]byte("Subject: x\r\n\r\n"), "x-none", "") {
		t.Fatal("absent field matched")
	}
}

// FuzzParse: Parse never panics, and what it accepts renders to text it
// reads back the same, and compiles.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"ALL", `OR FROM a (NOT SUBJECT "x y") SINCE 1-Feb-2024`, "UID 1:*", "HEADER a b", "TEXT \"\\\"\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(n.String())
		if err != nil || back.String() != n.String() {
			t.Fatalf("%q renders %q, which reads back as %v %v", s, n.String(), back, err)
		}
		if _, err := Compile(n, Options{SearchKey: []byte("k"), User: "u"}); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
	})
}
