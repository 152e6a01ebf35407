package main

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/cairn-archive/cairn/crypto/certs"
	"github.com/cairn-archive/cairn/httpapi"
)

// The deployment guides in docs/ say only what the binary does: every
// `cairn ...` command they show (in shell blocks and in inline code) is a
// command of this binary with flags it knows; every Cairn configuration
// block (a fence marked exactly "yaml") loads, over the defaults, as cairn
// serve loads a file (unknown keys refused, values validated); every API
// URL a curl line calls is a route of the HTTP API. Other YAML (Prometheus,
// Filebeat, compose) is fenced as "yml" and not checked here.
var guides = []string{"API.md", "DEPLOY.md", "EXCHANGE.md", "POSTFIX.md", "GOOGLE.md", "HARVEST.md", "S3.md", "SIEM.md", "BACKUP.md", "KEYS.md"}

type fence struct {
	info string
	line int
	text string
}

// markdown splits a guide into its fenced blocks and its prose.
func markdown(t *testing.T, path string) (blocks []fence, prose []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur *fence
	var body []string
	for i, l := range strings.Split(string(b), "\n") {
		trim := strings.TrimSpace(l)
		if strings.HasPrefix(trim, "```") {
			if cur == nil {
				cur = &fence{info: strings.TrimSpace(strings.TrimPrefix(trim, "```")), line: i + 1}
				body = nil
			} else {
				cur.text = strings.Join(body, "\n")
				blocks = append(blocks, *cur)
				cur = nil
			}
			continue
		}
		if cur != nil {
			body = append(body, l)
		} else {
			prose = append(prose, l)
		}
	}
	if cur != nil {
		t.Fatalf("%s: fence at line %d is not closed", path, cur.line)
	}
	return blocks, prose
}

// shellWords splits a command line as sh would for simple cases: quotes,
// backslash escapes; it stops at an unquoted |, ;, &, >, <, ) or #.
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote rune
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				w.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(rs):
			i++
			w.WriteRune(rs[i])
			inWord = true
		case c == ' ' || c == '\t':
			flush()
		case strings.ContainsRune("|;&><)#", c):
			flush()
			return words
		default:
			w.WriteRune(c)
			inWord = true
		}
	}
	flush()
	return words
}

var segmentSplit = regexp.MustCompile(`\$\(|&&|\|\||;|\|| -- `)

// cairnCommands returns the arguments of each cairn invocation in a shell
// block: at the start of a command (a line, after $(, &&, ||, ;, |, or --
// as in kubectl exec and runuser), or after docker compose exec SERVICE.
func cairnCommands(block string) [][]string {
	var out [][]string
	block = strings.ReplaceAll(block, "\\\n", " ")
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "$ ")
		for _, seg := range segmentSplit.Split(line, -1) {
			w := shellWords(seg)
			for len(w) > 0 && strings.Contains(w[0], "=") && !strings.HasPrefix(w[0], "-") {
				w = w[1:] // VAR=value prefixes
			}
			if len(w) >= 3 && (w[0] == "docker" && w[1] == "compose" || w[0] == "docker-compose") {
				i := 1
				for i < len(w) && w[i] != "exec" {
					i++
				}
				for i++; i < len(w) && strings.HasPrefix(w[i], "-"); i++ {
				}
				w = w[min(i+1, len(w)):]
			}
			if len(w) > 0 && (w[0] == "cairn" || w[0] == "./cairn" || w[0] == "/usr/local/bin/cairn") {
				out = append(out, w[1:])
			}
		}
	}
	return out
}

var usageWord = regexp.MustCompile(`^[a-z][a-z-]*$`)

// checkCommand runs cairn ARGS --help: the flags must parse, and the
// command path the help names must be the doc's leading words, with no
// unknown subcommand after it.
func checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	cmd := exec.Command(cairnBin, append(append([]string{}, args...), "--help")...)
	cmd.Env = append(os.Environ(), "CAIRN_CONFIG=")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("%s: cairn %s: %v\n%s", where, strings.Join(args, " "), err, out.String())
		return
	}
	help := out.String()
	_, usage, ok := strings.Cut(help, "Usage:\n")
	if !ok {
		t.Errorf("%s: cairn %s: no usage in the help", where, strings.Join(args, " "))
		return
	}
	first := strings.Fields(strings.SplitN(strings.TrimSpace(usage), "\n", 2)[0])
	var path []string
	for _, f := range first[1:] {
		if !usageWord.MatchString(f) {
			break
		}
		path = append(path, f)
	}
	var lead []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		lead = append(lead, a)
	}
	for i, p := range path {
		if i >= len(lead) || lead[i] != p {
			t.Errorf("%s: cairn %s: the binary's command is cairn %s", where, strings.Join(args, " "), strings.Join(path, " "))
			return
		}
	}
	if strings.Contains(help, "Available Commands:") && len(lead) > len(path) {
		t.Errorf("%s: cairn %s: %q is not a subcommand of cairn %s", where, strings.Join(args, " "), lead[len(path)], strings.Join(path, " "))
	}
}

var pemPath = regexp.MustCompile(`/etc/cairn/[A-Za-z0-9._/-]+\.pem`)

// pemFilesHere points the PEM files a block names (CAs the sinks read at
// load) at a real certificate in a temporary folder.
func pemFilesHere(t *testing.T, block string) []byte {
	t.Helper()
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, err := certs.LoadOrCreate(cert, key, nil); err != nil {
		t.Fatal(err)
	}
	return []byte(pemPath.ReplaceAllString(block, cert))
}

var inlineCairn = regexp.MustCompile("`((?:\\./)?cairn [^`]+)`")
var urlRe = regexp.MustCompile(`https?://[^\s'"]+`)

func TestGuidesTrueToTheCode(t *testing.T) {
	var doc struct {
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(httpapi.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	var routes []*regexp.Regexp
	for p := range doc.Paths {
		routes = append(routes, regexp.MustCompile("^"+regexp.MustCompile(`\\\{[a-z]+\\\}`).ReplaceAllString(regexp.QuoteMeta(p), "[^/]+")+"$"))
	}
	commands, configs := 0, 0
	for _, g := range guides {
		path := filepath.Join("..", "..", "docs", g)
		blocks, prose := markdown(t, path)
		for _, b := range blocks {
			where := g + ":" + strconv.Itoa(b.line)
			switch b.info {
			case "yaml":
				configs++
				if _, err := loadConfigFrom(t, pemFilesHere(t, b.text)); err != nil {
					t.Errorf("%s: this configuration does not load: %v\n%s", where, err, b.text)
				}
			case "sh", "bash", "console", "shell":
				for _, args := range cairnCommands(b.text) {
					commands++
					if len(args) > 0 && args[0] == "cairn" {
						args = args[1:]
					}
					checkCommand(t, where, args)
				}
				for _, line := range strings.Split(strings.ReplaceAll(b.text, "\\\n", " "), "\n") {
					if !strings.Contains(line, "curl") {
						continue
					}
					// The API answers a body of any other type with 415,
					// and curl -d sends a form's.
					if strings.Contains(line, " -d ") && !strings.Contains(line, "Content-Type: application/json") {
						t.Errorf("%s: curl -d without -H 'Content-Type: application/json' (the API answers 415): %s", where, strings.TrimSpace(line))
					}
					for _, raw := range urlRe.FindAllString(line, -1) {
						u, err := url.Parse(raw)
						if err != nil {
							t.Errorf("%s: %s: %v", where, raw, err)
							continue
						}
						matched := false
						for _, r := range routes {
							matched = matched || r.MatchString(u.Path)
						}
						if !matched {
							t.Errorf("%s: curl calls %s, which is no route of the HTTP API", where, u.Path)
						}
					}
				}
			}
		}
		for i, l := range prose {
			for _, m := range inlineCairn.FindAllStringSubmatch(l, -1) {
				commands++
				w := shellWords(m[1])
				checkCommand(t, g+":prose "+strconv.Itoa(i+1), w[1:])
			}
		}
	}
	if commands < 50 || configs < 10 {
		t.Errorf("only %d commands and %d configuration blocks found: is the extraction broken?", commands, configs)
	}
	t.Logf("%d cairn commands and %d configuration blocks checked in %d guides", commands, configs, len(guides))
}

// The helpers themselves.
func TestCairnCommandsExtraction(t *testing.T) {
	got := cairnCommands(`cairn user add lena --role legal
TOKEN=$(cairn user token create lena --label "review tool")
docker compose exec cairn cairn user add alice --role auditor
kubectl exec -it cairn-0 -- cairn key list
install -d -m 0750 -o root -g cairn /etc/cairn
cairn audit export --since 2026-11-01 --format cef > november.cef
journalctl -u cairn          # logs
cairn search 'SUBJECT "archive test"' | head`)
	want := [][]string{
		{"user", "add", "lena", "--role", "legal"},
		{"user", "token", "create", "lena", "--label", "review tool"},
		{"user", "add", "alice", "--role", "auditor"},
		{"key", "list"},
		{"audit", "export", "--since", "2026-11-01", "--format", "cef"},
		{"search", `SUBJECT "archive test"`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if strings.Join(got[i], "\x00") != strings.Join(want[i], "\x00") {
			t.Errorf("%d: %q, want %q", i, got[i], want[i])
		}
	}
}
