package imapview

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// A custodian address beyond ASCII (an SMTPUTF8 mailbox) names its folder
// in modified UTF-7 on the wire (RFC 3501 §5.1.3, the client has not
// enabled UTF8=ACCEPT), and SELECT finds the folder by that name.
func TestNonASCIICustodianFolder(t *testing.T) {
	f := newFixture(t, fixtureOpts{generated: 2})
	f.a.Add(t, []byte("From: x@example.com\r\nSubject: hi\r\n\r\nbody\r\n"), time.Now(), "josé@exämple.com")
	r := f.raw()
	r.login("auditor", f.password)
	r.send("L LIST \"\" \"Custodians/*\"\r\n")
	out := r.until("L OK")
	if !strings.Contains(out, `"Custodians/jos&AOk-@ex&AOQ-mple.com"`) || strings.Contains(out, "josé") {
		t.Fatalf("LIST does not name the folder in modified UTF-7:\n%s", out)
	}
	r.send("S EXAMINE \"Custodians/jos&AOk-@ex&AOQ-mple.com\"\r\n")
	if out := r.until("S OK"); !strings.Contains(out, "* 1 EXISTS") {
		t.Fatalf("EXAMINE by the UTF-7 name:\n%s", out)
	}
	// go-imap's client decodes the name; selecting by it works too.
	c := f.auditor()
	sel, err := c.Select("Custodians/josé@exämple.com", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("select: %+v %v", sel, err)
	}
}
