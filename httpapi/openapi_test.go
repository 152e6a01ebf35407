package httpapi

import (
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The OpenAPI document and the route table describe the same API: every
// route is a documented operation with the same roles and audit action,
// every documented operation is a route, path parameters agree, and every
// $ref resolves. The served /openapi.json is the document.
func TestOpenAPIInSync(t *testing.T) {
	h := newHarness(t, nil)
	code, hdr, body := h.do("GET", "/openapi.json", "", nil)
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/openapi.json: %d %s", code, hdr.Get("Content-Type"))
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %q", v)
	}
	paths, _ := doc["paths"].(map[string]any)
	documented := map[string]map[string]any{}
	for p, item := range paths {
		for method, op := range item.(map[string]any) {
			documented[strings.ToUpper(method)+" "+p] = op.(map[string]any)
		}
	}
	param := regexp.MustCompile(`\{([a-z]+)\}`)
	routes := map[string]bool{}
	for _, rt := range h.srv.Routes() {
		key := rt.Method + " " + rt.Path
		routes[key] = true
		op, ok := documented[key]
		if !ok {
			t.Errorf("route %s is not in openapi.yaml", key)
			continue
		}
		var roles []string
		docRoles, ok := op["x-cairn-roles"].([]any)
		if !ok {
			t.Errorf("%s: no x-cairn-roles", key)
		}
		for _, r := range docRoles {
			roles = append(roles, r.(string))
		}
		var want []string
		for _, r := range rt.Roles {
			want = append(want, string(r))
		}
		if !slices.Equal(roles, want) {
			t.Errorf("%s: openapi.yaml says roles %v, the route %v", key, roles, want)
		}
		action, _ := op["x-cairn-audit"].(string)
		if action != string(rt.Action) {
			t.Errorf("%s: openapi.yaml says audit action %q, the route %q", key, action, rt.Action)
		}
		sec, hasSec := op["security"]
		public := hasSec && len(sec.([]any)) == 0
		if public != rt.Public() {
			t.Errorf("%s: openapi.yaml public=%v, the route public=%v", key, public, rt.Public())
		}
		if !rt.Public() {
			resp := op["responses"].(map[string]any)
			for _, c := range []string{"401", "403", "429", "503"} {
				if _, ok := resp[c]; !ok {
					t.Errorf("%s: response %s undocumented", key, c)
				}
			}
		}
		var inPath, declared []string
		for _, m := range param.FindAllStringSubmatch(rt.Path, -1) {
			inPath = append(inPath, m[1])
		}
		ps, _ := op["parameters"].([]any)
		for _, p := range ps {
			if pm := p.(map[string]any); pm["in"] == "path" {
				declared = append(declared, pm["name"].(string))
			}
		}
		sort.Strings(inPath)
		sort.Strings(declared)
		if !slices.Equal(inPath, declared) {
			t.Errorf("%s: path parameters %v, documented %v", key, inPath, declared)
		}
	}
	for key := range documented {
		if !routes[key] {
			t.Errorf("openapi.yaml documents %s, which no route serves", key)
		}
	}
	// Every $ref points at something.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if resolve(doc, ref) == nil {
					t.Errorf("$ref %s resolves to nothing", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(doc)
}

func resolve(doc map[string]any, ref string) any {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}
