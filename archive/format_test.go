package archive

// The test vectors of docs/FORMAT.md. TestFormatVectors checks the committed
// vectors in testdata/format-vectors.json with this code, and the Merkle
// root with an independent, naive RFC 9162 implementation below; run with
// -update to write new vectors (only when the format changes on purpose).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/cairn-archive/cairn/archive/ledger"
	"github.com/cairn-archive/cairn/archive/objstore/fs"
	"github.com/cairn-archive/cairn/archive/payload"
	"github.com/cairn-archive/cairn/crypto"
	"github.com/cairn-archive/cairn/ingest"
)

var update = flag.Bool("update", false, "write new format test vectors")

type formatVectors struct {
	Secret       string   `json:"secret_hex"`
	KEKID        string   `json:"kek_id_hex"`
	KEK          string   `json:"kek_hex"`
	NameKey      string   `json:"name_key_hex"`
	SearchKey    string   `json:"search_key_hex"`
	Raw          string   `json:"message_b64"`
	RawSHA256    string   `json:"message_sha256_hex"`
	ObjectName   string   `json:"object_name"`
	Object       string   `json:"object_b64"`
	ObjectSHA256 string   `json:"object_sha256_hex"`
	KeyName      string   `json:"key_object_name"`
	KeyObject    string   `json:"key_object_b64"`
	FileKey      string   `json:"file_key_hex"`
	Salt         string   `json:"salt_hex"`
	Content      string   `json:"content_commit_hex"`
	Envelope     string   `json:"envelope_json"`
	EnvSealed    string   `json:"envelope_sealed_b64"`
	EnvCommit    string   `json:"envelope_commit_hex"`
	SignerKey    string   `json:"signer_key"`
	VerifierKey  string   `json:"verifier_key"`
	Lines        []string `json:"entry_lines"`
	EntryHashes  []string `json:"entry_hashes_hex"`
	LeafHashes   []string `json:"leaf_hashes_hex"`
	Root         string   `json:"root_hex"`
	Segment      string   `json:"segment"`
	Checkpoint   string   `json:"checkpoint"`
	Word         string   `json:"word"`
	Token        string   `json:"blind_token"`
}

const vectorsPath = "testdata/format-vectors.json"

func vectorKeyring(v *formatVectors) *crypto.Keyring {
	var secret [32]byte
	kek := &crypto.KEK{Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	mustHex(v.Secret, secret[:])
	mustHex(v.KEKID, kek.ID[:])
	mustHex(v.KEK, kek.Key[:])
	return crypto.KeyringFromSecrets(secret, kek)
}

func mustHex(s string, dst []byte) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		panic("bad hex in vectors: " + s)
	}
	copy(dst, b)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
func unb64(t *testing.T, s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeVectors(t *testing.T) {
	v := &formatVectors{
		Secret: strings.Repeat("11", 32),
		KEKID:  "0102030405060708",
		KEK:    strings.Repeat("22", 32),
		Word:   "quarterly",
	}
	kr := vectorKeyring(v)
	v.NameKey = hex.EncodeToString(kr.NameKey())
	v.SearchKey = hex.EncodeToString(kr.SearchKey())
	s := &Store{keys: kr, nameMACs: crypto.NewMACPool(kr.NameKey())}
	raw := []byte("From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: Q3 figures\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\nMessage-ID: <v1@example.com>\r\n\r\nThe quarterly report is attached.\r\n")
	sha := sha256.Sum256(raw)
	v.Raw, v.RawSHA256 = b64(raw), hex.EncodeToString(sha[:])
	mk := crypto.NewMessageKeySalt()
	var obj bytes.Buffer
	if err := payload.Seal(&obj, raw, mk, payload.Fast); err != nil {
		t.Fatal(err)
	}
	osha := sha256.Sum256(obj.Bytes())
	v.ObjectName, v.KeyName = s.objectName("messages", sha, 0), s.objectName("keys", sha, 0)
	v.Object, v.ObjectSHA256 = b64(obj.Bytes()), hex.EncodeToString(osha[:])
	v.KeyObject = b64(kr.WrapMessageKey(mk, v.ObjectName))
	v.FileKey, v.Salt = hex.EncodeToString(mk.FileKey[:]), hex.EncodeToString(mk.Salt[:])
	c := mk.Commit(raw)
	v.Content = hex.EncodeToString(c[:])
	envJSON, _ := json.Marshal(&ingest.Envelope{Source: ingest.SourceSMTP, Sender: "alice@example.com",
		Recipients: []ingest.Recipient{{Address: "bob@example.org", Kind: ingest.KindTo}, {Address: "carol@example.org", Kind: ingest.KindBcc}},
		ReceivedAt: time.Date(2026, 11, 26, 10, 0, 1, 0, time.UTC)})
	v.Envelope = string(envJSON)
	v.EnvSealed = b64(mk.Seal("envelope", envJSON))
	ec := mk.Commit(envJSON)
	v.EnvCommit = hex.EncodeToString(ec[:])

	// Three entries appended through the real ledger code.
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 64)), "example.com/cairn/vectors")
	if err != nil {
		t.Fatal(err)
	}
	v.SignerKey, v.VerifierKey = skey, vkey
	signer, _ := note.NewSigner(skey)
	verifier, _ := note.NewVerifier(vkey)
	objs, _ := fs.Open(t.TempDir())
	lg, err := ledger.Open(context.Background(), objs, "vectors", signer, verifier, ledger.State{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 10, 0, 2, 123456789, time.UTC)
	ref := uint64(0)
	entries := []*ledger.Entry{
		{Kind: ledger.KindMessage, Time: at, Message: &ledger.Message{Content: v.Content, Size: int64(len(raw)), Object: v.ObjectName,
			ObjectSHA256: v.ObjectSHA256, ObjectSize: int64(obj.Len()), KeyObject: v.KeyName},
			Delivery: &ledger.Delivery{Envelope: v.EnvSealed, EnvelopeCommit: v.EnvCommit}},
		{Kind: ledger.KindDelivery, Time: at, Ref: &ref, Delivery: &ledger.Delivery{Envelope: v.EnvSealed, EnvelopeCommit: v.EnvCommit}},
		{Kind: ledger.KindEvent, Time: at, Event: &ledger.Event{Type: "hold.place", Fields: map[string]string{"case": "C-1", "reason": "litigation"}}},
	}
	lines, _, err := lg.Append(context.Background(), entries)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		v.Lines = append(v.Lines, string(l))
		eh, lh := ledger.EntryHash(l), ledger.LeafHash(l)
		v.EntryHashes = append(v.EntryHashes, eh.String())
		v.LeafHashes = append(v.LeafHashes, lh.String())
	}
	seg, err := os.ReadFile(filepath.Join(objs.Dir(), "ledger", "vectors", "00000000000000000000.seg"))
	if err != nil {
		t.Fatal(err)
	}
	v.Segment = string(seg)
	ck, signed, err := lg.PublishCheckpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v.Root = hex.EncodeToString(ck.Root[:])
	v.Checkpoint = string(signed)
	v.Token = BlindToken(kr.SearchKey(), v.Word)
	out, _ := json.MarshalIndent(v, "", "  ")
	os.MkdirAll("testdata", 0o755)
	if err := os.WriteFile(vectorsPath, append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFormatVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var v formatVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	kr := vectorKeyring(&v)
	if hex.EncodeToString(kr.NameKey()) != v.NameKey || hex.EncodeToString(kr.SearchKey()) != v.SearchKey {
		t.Fatal("derived keys differ (HKDF labels)")
	}
	raw := unb64(t, v.Raw)
	sha := sha256.Sum256(raw)
	if hex.EncodeToString(sha[:]) != v.RawSHA256 {
		t.Fatal("message hash")
	}
	s := &Store{keys: kr, nameMACs: crypto.NewMACPool(kr.NameKey())}
	if s.objectName("messages", sha, 0) != v.ObjectName || s.objectName("keys", sha, 0) != v.KeyName {
		t.Fatal("object names differ")
	}
	mk, err := kr.UnwrapMessageKey(unb64(t, v.KeyObject), v.ObjectName)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(mk.FileKey[:]) != v.FileKey || hex.EncodeToString(mk.Salt[:]) != v.Salt {
		t.Fatal("key object does not hold the vector's file key and salt")
	}
	obj := unb64(t, v.Object)
	if osha := sha256.Sum256(obj); hex.EncodeToString(osha[:]) != v.ObjectSHA256 {
		t.Fatal("object hash")
	}
	if !bytes.HasPrefix(obj, []byte("age-encryption.org/v1\n-> cairn-key v1\n\n--- ")) {
		t.Fatalf("object header: %q", obj[:60])
	}
	rd, err := payload.Open(bytes.NewReader(obj), int64(len(obj)), mk)
	if err != nil {
		t.Fatal(err)
	}
	got, err := rd.Bytes()
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatal("object does not decrypt to the message")
	}
	if c := mk.Commit(raw); hex.EncodeToString(c[:]) != v.Content {
		t.Fatal("content commitment")
	}
	env, err := mk.Open("envelope", unb64(t, v.EnvSealed))
	if err != nil || string(env) != v.Envelope {
		t.Fatalf("sealed envelope: %v", err)
	}
	if c := mk.Commit(env); hex.EncodeToString(c[:]) != v.EnvCommit {
		t.Fatal("envelope commitment")
	}
	// Entries: hashes, chain, and an independent Merkle root.
	var leaves [][]byte
	prev := strings.Repeat("0", 64)
	for i, l := range v.Lines {
		e, err := ledger.ParseEntry([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		if e.Prev != prev || e.Seq != uint64(i) {
			t.Fatalf("entry %d: chain", i)
		}
		eh := sha256.Sum256([]byte(l))
		lh := sha256.Sum256(append([]byte{0}, l...))
		if hex.EncodeToString(eh[:]) != v.EntryHashes[i] || hex.EncodeToString(lh[:]) != v.LeafHashes[i] {
			t.Fatalf("entry %d: hashes", i)
		}
		prev = hex.EncodeToString(eh[:])
		leaves = append(leaves, lh[:])
	}
	if root := naiveMTH(leaves); hex.EncodeToString(root) != v.Root {
		t.Fatal("Merkle root differs from the naive RFC 9162 computation")
	}
	verifier, err := note.NewVerifier(v.VerifierKey)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(v.Segment), note.VerifierList(verifier))
	if err != nil || n.Text != strings.Join(v.Lines, "\n")+"\n" {
		t.Fatalf("segment: %v", err)
	}
	ck, err := ledger.OpenCheckpoint([]byte(v.Checkpoint), verifier)
	if err != nil || ck.Size != uint64(len(v.Lines)) || hex.EncodeToString(ck.Root[:]) != v.Root || ck.Origin != "example.com/cairn/vectors" {
		t.Fatalf("checkpoint: %+v %v", ck, err)
	}
	if BlindToken(kr.SearchKey(), v.Word) != v.Token {
		t.Fatal("blind token")
	}
}

// naiveMTH is RFC 9162 §2.1.1's MTH, written from the RFC's definition.
func naiveMTH(leafHashes [][]byte) []byte {
	switch len(leafHashes) {
	case 0:
		h := sha256.Sum256(nil)
		return h[:]
	case 1:
		return leafHashes[0]
	}
	k := 1
	for k*2 < len(leafHashes) {
		k *= 2
	}
	l, r := naiveMTH(leafHashes[:k]), naiveMTH(leafHashes[k:])
	h := sha256.Sum256(append(append([]byte{1}, l...), r...))
	return h[:]
}
