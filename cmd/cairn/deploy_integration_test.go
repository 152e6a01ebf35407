//go:build integration

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ensureTool finds a command, installing its Debian package if it is
// missing; the test fails (never skips) when neither works.
func ensureTool(t *testing.T, cmd, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(cmd); err == nil {
		return p
	}
	t.Logf("%s missing: apt-get install %s", cmd, pkg)
	inst := exec.Command("sh", "-c", "apt-get update -qq && apt-get install -y -qq --no-install-recommends "+pkg)
	inst.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := inst.CombinedOutput(); err != nil {
		t.Fatalf("installing %s: %v\n%s", pkg, err, out)
	}
	p, err := exec.LookPath(cmd)
	if err != nil {
		t.Fatalf("%s still missing after installing %s", cmd, pkg)
	}
	return p
}

// The systemd unit passes systemd-analyze verify, against the unit files
// of this machine's systemd and the cairn binary at ExecStart's path, in a
// scratch root so nothing is installed on the machine. Warnings (an
// unknown or misspelt directive, a bad value) fail the test too.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa := ensureTool(t, "systemd-analyze", "systemd")
	root := t.TempDir()
	unit := filepath.Join(deployDir, "cairn.service")
	exec0 := strings.Fields(unitDirectives(t, unit)["Service"]["ExecStart"][0])[0]
	for _, d := range []string{filepath.Dir(exec0), "etc/systemd/system", "usr/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", "-r", "/usr/lib/systemd/system", filepath.Join(root, "usr/lib/systemd/")).CombinedOutput(); err != nil {
		t.Fatalf("copy the system units: %v %s", err, out)
	}
	if out, err := exec.Command("cp", cairnBin, filepath.Join(root, exec0)).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if out, err := exec.Command("cp", unit, filepath.Join(root, "etc/systemd/system/cairn.service")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	cmd := exec.Command(sa, "verify", "--root="+root, "/etc/systemd/system/cairn.service")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out.String())
	}
	// The hardening, as systemd rates it (lower is better; 10 is none).
	sec, _ := exec.Command(sa, "security", "--offline=yes", "--root="+root, "/etc/systemd/system/cairn.service").CombinedOutput()
	lines := strings.Split(strings.TrimSpace(string(sec)), "\n")
	t.Logf("systemd-analyze security: %s", lines[len(lines)-1])
	if !strings.Contains(lines[len(lines)-1], "OK") {
		t.Errorf("systemd-analyze security rates the unit: %s", lines[len(lines)-1])
	}
}

// The compose file passes `docker compose config` (or docker-compose's),
// which validates it against the Compose specification without an
// engine.
func TestComposeConfig(t *testing.T) {
	var args []string
	if err := exec.Command("docker", "compose", "version").Run(); err == nil {
		args = []string{"docker", "compose"}
	} else {
		args = []string{ensureTool(t, "docker-compose", "docker-compose")}
	}
	args = append(args, "-f", filepath.Join(deployDir, "compose.yaml"), "config", "-q")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "CAIRN_S3_SECRET=test-secret")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// Without the secret it refuses, naming it.
	cmd = exec.Command(args[0], args[1:]...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_S3_SECRET=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "CAIRN_S3_SECRET") {
		t.Fatalf("compose config without CAIRN_S3_SECRET: %v\n%s", err, out)
	}
}
