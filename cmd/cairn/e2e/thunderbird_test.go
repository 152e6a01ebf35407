//go:build integration

package e2e

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestThunderbird drives a real, headless Thunderbird (scripts/
// thunderbird_check.py) against the IMAP view of cairn serve: it logs in
// with a password kept in its own login manager, discovers every folder,
// tries to CREATE its Trash on first start (refused NO [NOPERM], never
// TRYCREATE) and still downloads every folder for offline use (INBOX,
// Custodians/<address>, Dates/<yyyy>/<mm>), every message of each.
// Afterwards the archive is unchanged and verify --full passes.
//
// Headless, Thunderbird 153 keeps only INBOX in its in-memory folder tree,
// so the script asks for the other folders by URL and tells them the
// server's hierarchy delimiter, which a folder made from a URL does not
// know yet.
func TestThunderbird(t *testing.T) {
	requireTools(t, "thunderbird", "python3")
	a := newIMAPArchive(t, 60)
	host, port, _ := strings.Cut(a.imapAddr, ":")
	cmd := exec.Command("python3", filepath.Join(repoRoot, "scripts", "thunderbird_check.py"), host, port, "auditor", a.password, t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("thunderbird_check.py: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
	a.unchanged(t, 0)
}
