package main

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cairn-archive/cairn/archive/payload"
)

// Every option in Config appears in example.yaml (with its comment), and
// the example parses into Config exactly: cairn config example documents
// everything and nothing else.
func TestExampleCoversEveryOption(t *testing.T) {
	var doc map[string]any
	if err := yaml.Unmarshal(exampleYAML, &doc); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, k := range flattenKeys("", doc) {
		have[k.key] = true
	}
	var missing []string
	for _, k := range configKeys("", reflect.TypeOf(Config{})) {
		if !have[k] && !hasPrefixKey(have, k) {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("options missing from example.yaml: %v", missing)
	}
	if _, err := loadConfigFrom(t, exampleYAML); err != nil {
		t.Fatalf("example.yaml does not load: %v", err)
	}
	// Each option has a comment line somewhere above it in its section.
	lines := strings.Split(string(exampleYAML), "\n")
	for i, l := range lines {
		trim := strings.TrimSpace(l)
		if trim == "" || strings.HasPrefix(trim, "#") || strings.HasPrefix(trim, "-") {
			continue
		}
		commented := false
		for j := i - 1; j >= 0 && j >= i-12; j-- {
			if strings.HasPrefix(strings.TrimSpace(lines[j]), "#") {
				commented = true
				break
			}
		}
		if !commented {
			t.Errorf("example.yaml line %d %q has no comment near it", i+1, trim)
		}
	}
}

// deploy/cairn.example.yaml is the same text, for people who never run the
// binary first.
func TestDeployExampleInSync(t *testing.T) {
	b, err := os.ReadFile("../../deploy/cairn.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(exampleYAML) {
		t.Fatal("deploy/cairn.example.yaml differs from `cairn config example`: run `go run ./cmd/cairn config example > deploy/cairn.example.yaml`")
	}
}

func hasPrefixKey(have map[string]bool, k string) bool {
	for h := range have {
		if strings.HasPrefix(h, k+".") {
			return true
		}
	}
	return false
}

// configKeys lists the mapstructure keys of a config struct, dotted. A
// slice or map field is one key (its items are documented in comments).
func configKeys(prefix string, t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("mapstructure")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if opts == "squash" || (name == "" && f.Anonymous) {
			out = append(out, configKeys(prefix, f.Type)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() != "time" {
			out = append(out, configKeys(key, ft)...)
			continue
		}
		out = append(out, key)
	}
	return out
}

func loadConfigFrom(t *testing.T, data []byte) (*Config, error) {
	p := t.TempDir() + "/c.yaml"
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return loadConfig(p)
}

// TestIngestCompression: ingest.compression reaches the archive's options,
// and a value other than fast or compact is refused by name.
func TestIngestCompression(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		yaml string
		want payload.Compression
		fail string
	}{
		{"", payload.Fast, ""},
		{"ingest:\n  compression: fast\n", payload.Fast, ""},
		{"ingest:\n  compression: compact\n", payload.Compact, ""},
		{"ingest:\n  compression: zip\n", 0, `ingest.compression "zip"`},
	} {
		f := filepath.Join(dir, "cairn.yaml")
		if err := os.WriteFile(f, []byte("data_dir: "+dir+"\n"+c.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(f)
		if err == nil {
			err = cfg.Validate()
		}
		switch {
		case c.fail != "":
			if err == nil || !strings.Contains(err.Error(), c.fail) {
				t.Errorf("%q: %v, want %q", c.yaml, err, c.fail)
			}
		case err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case cfg.compression() != c.want:
			t.Errorf("%q: compression %v, want %v", c.yaml, cfg.compression(), c.want)
		}
	}
}
