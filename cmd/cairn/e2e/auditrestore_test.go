//go:build integration

package e2e

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An audit.db restored from an older backup (docs/BACKUP.md) goes on after
// the last sealed event, not from its own older head: the first command
// run after the restore (cairn search, which records its own event) and
// then cairn serve catch up from the sealed segments, and cairn audit
// verify passes. Without the catch-up, the restored chain gave new events
// sealed seqs: serve's sealing then failed for good and verify reported
// the fork.
func TestAuditRestoredFromBackup(t *testing.T) {
	in := newInstance(t, config{"audit.segment_interval": "1s", "audit.segment_events": 4})
	auditDB := filepath.Join(in.data, "audit.db")
	heads := func() (head, sealed int) {
		t.Helper()
		db, err := sql.Open("sqlite3", "file:"+auditDB+"?mode=ro&_busy_timeout=10000")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		head = queryInt(t, db, `SELECT COALESCE(MAX(seq), 0) FROM events`)
		sealed = queryInt(t, db, `SELECT COALESCE(MAX(last), 0) FROM seals`)
		return head, sealed
	}
	search := func(n int) {
		t.Helper()
		for range n {
			in.mustCLI("search", "ALL")
		}
	}
	// waitSealed waits until serve has sealed every event.
	waitSealed := func() int {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			h, s := heads()
			if h > 0 && h == s {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve sealed %d of %d audit events in 30 s\n%s", s, h, in.log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	copyFiles := func(from, to string) {
		t.Helper()
		for _, suf := range []string{"", "-wal", "-shm"} {
			os.Remove(to + suf)
			b, err := os.ReadFile(from + suf)
			if errors.Is(err, os.ErrNotExist) && suf != "" {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to+suf, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	in.start()
	search(3)
	backedUp := waitSealed()
	in.stop()
	backup := filepath.Join(in.dir, "audit-backup.db")
	copyFiles(auditDB, backup)

	in.start()
	search(6)
	sealed := waitSealed()
	in.stop()
	if sealed <= backedUp {
		t.Fatalf("sealed %d after the backup at %d", sealed, backedUp)
	}

	copyFiles(backup, auditDB)
	search(1)
	if h, _ := heads(); h != sealed+1 {
		t.Fatalf("after the restore, the next event is seq %d; want %d, after the %d sealed (the backup had %d)", h, sealed+1, sealed, backedUp)
	}
	if out, errb, code := in.cli("audit", "verify"); code != 0 {
		t.Fatalf("cairn audit verify after the restore: exit %d\n%s%s", code, out, errb)
	}
	in.start()
	search(2)
	final := waitSealed()
	in.stop()
	if final != sealed+3 {
		t.Errorf("sealed up to %d after the restore, want %d", final, sealed+3)
	}
	out, errb, code := in.cli("audit", "verify")
	if code != 0 {
		t.Fatalf("cairn audit verify at the end: exit %d\n%s%s", code, out, errb)
	}
	if strings.Contains(in.log(), "sealing failed") {
		t.Errorf("serve's sealing failed after the restore:\n%s", in.log())
	}
}
