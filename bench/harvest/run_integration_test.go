//go:build integration

// Package harvestbench runs bench/harvest/run.sh small, so that CI keeps
// the benchmark working (the full run is 100,000 messages, by hand).
package harvestbench

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBenchmarkScriptSmall(t *testing.T) {
	out := filepath.Join(t.TempDir(), "summary.txt")
	cmd := exec.Command("bash", "run.sh", "400", "1")
	cmd.Env = append(os.Environ(), "OUT="+out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run.sh 400 1: %v\n%s", err, b)
	}
	sum, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Harvest benchmark: 400 messages", "cairn harvest run --once", "mbsync, FSync no", "mbsync, FSync yes"} {
		if !strings.Contains(string(sum), want) {
			t.Fatalf("summary lacks %q:\n%s", want, sum)
		}
	}
	t.Logf("\n%s", sum)
}
