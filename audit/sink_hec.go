package audit

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// HECConfig configures a Splunk HTTP Event Collector sink.
type HECConfig struct {
	// Name keys the sink's cursor (default "hec:"+URL).
	Name string `yaml:"name" mapstructure:"name"`
	// URL is the collector's base URL, e.g. https://splunk.example.com:8088;
	// the sink posts to /services/collector/event and polls
	// /services/collector/ack under it.
	URL string `yaml:"url" mapstructure:"url"`
	// Token is the HEC token (sent as "Authorization: Splunk <token>").
	Token string `yaml:"token" mapstructure:"token"`
	// Index, Source, SourceType and Host set the event metadata (defaults:
	// the token's index, "cairn", "cairn:audit", the local host name).
	Index      string `yaml:"index" mapstructure:"index"`
	Source     string `yaml:"source" mapstructure:"source"`
	SourceType string `yaml:"sourcetype" mapstructure:"sourcetype"`
	Host       string `yaml:"host" mapstructure:"host"`
	// Ack enables indexer acknowledgement: a batch counts as delivered only
	// when /services/collector/ack reports its ackId true. Enable it when
	// the token has useACK set.
	Ack bool `yaml:"ack" mapstructure:"ack"`
	// Channel is the X-Splunk-Request-Channel (a UUID; default: a new one
	// per process).
	Channel string `yaml:"channel" mapstructure:"channel"`
	// AckTimeout: a batch whose ack is not true after this long is sent
	// again (default 2m; Splunk may drop acks, e.g. on indexer restart).
	AckTimeout time.Duration `yaml:"ack_timeout" mapstructure:"ack_timeout"`
	// CAFile is a PEM bundle to verify the collector's certificate
	// (default: the system roots).
	CAFile string `yaml:"ca_file" mapstructure:"ca_file"`
	// Timeout bounds one HTTP request (default 30s).
	Timeout time.Duration `yaml:"timeout" mapstructure:"timeout"`
}

// Validate checks c and fills defaults.
func (c *HECConfig) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("audit: hec sink: url %q must be http(s)://host[:port]", c.URL)
	}
	if c.Token == "" {
		return errors.New("audit: hec sink: token is required")
	}
	if c.Name == "" {
		c.Name = "hec:" + c.URL
	}
	if c.Source == "" {
		c.Source = "cairn"
	}
	if c.SourceType == "" {
		c.SourceType = "cairn:audit"
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	if c.Channel == "" {
		c.Channel = uuid.NewString()
	} else if _, err := uuid.Parse(c.Channel); err != nil {
		return fmt.Errorf("audit: hec sink %s: channel must be a UUID", c.Name)
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = 2 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	return nil
}

// HECSink posts entries to a Splunk HTTP Event Collector, one batch per
// request. Each event is the JSONL line (seq and hash included); seq and
// hash are also sent as indexed fields.
type HECSink struct {
	c      HECConfig
	client *http.Client
	now    func() time.Time

	pending []hecBatch // posted, not yet acknowledged, oldest first
	acked   Seq
	sent    Seq
	buf     []byte
}

type hecBatch struct {
	ackID  uint64
	last   Seq
	at     time.Time
	passed bool // its ack came back true
}

var _ Sink = (*HECSink)(nil)

// NewHECSink validates c and returns the sink.
func NewHECSink(c HECConfig) (*HECSink, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("audit: hec sink %s: %w", c.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("audit: hec sink %s: no certificate in %s", c.Name, c.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &HECSink{c: c, client: &http.Client{Transport: tr, Timeout: c.Timeout}, now: time.Now}, nil
}

// Name implements Sink.
func (s *HECSink) Name() string { return s.c.Name }

// hecEvent is one event in the collector's JSON format
// (Splunk docs, "Format events for HTTP Event Collector").
type hecEvent struct {
	Time       json.Number       `json:"time"` // epoch seconds with milliseconds
	Host       string            `json:"host,omitempty"`
	Source     string            `json:"source,omitempty"`
	SourceType string            `json:"sourcetype,omitempty"`
	Index      string            `json:"index,omitempty"`
	Event      json.RawMessage   `json:"event"`
	Fields     map[string]string `json:"fields"`
}

// hecResponse is the collector's reply to an event post.
type hecResponse struct {
	Text  string  `json:"text"`
	Code  int     `json:"code"`
	AckID *uint64 `json:"ackId"`
}

func (s *HECSink) request(ctx context.Context, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(s.c.URL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Splunk "+s.c.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Splunk-Request-Channel", s.c.Channel)
	return s.client.Do(req)
}

// Send implements Sink: one POST per call.
func (s *HECSink) Send(ctx context.Context, entries []Entry) (Seq, error) {
	s.buf = s.buf[:0]
	for i := range entries {
		e := &entries[i]
		ms := e.Event.Time.UnixMilli()
		ev := hecEvent{
			Time: json.Number(fmt.Sprintf("%d.%03d", ms/1000, ms%1000)),
			Host: s.c.Host, Source: s.c.Source, SourceType: s.c.SourceType, Index: s.c.Index,
			Event:  AppendLine(nil, e.Bytes, e.Hash),
			Fields: map[string]string{"seq": strconv.FormatUint(uint64(e.Seq), 10), "hash": e.Hash.String()},
		}
		b, err := json.Marshal(&ev)
		if err != nil {
			return s.acked, err
		}
		s.buf = append(s.buf, b...)
		s.buf = append(s.buf, '\n')
	}
	resp, err := s.request(ctx, "/services/collector/event", s.buf)
	if err != nil {
		return s.acked, fmt.Errorf("audit: hec sink %s: %w", s.c.Name, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	var r hecResponse
	jerr := json.Unmarshal(body, &r)
	if resp.StatusCode != http.StatusOK || jerr != nil || r.Code != 0 {
		return s.acked, fmt.Errorf("audit: hec sink %s: HTTP %d: code %d %q", s.c.Name, resp.StatusCode, r.Code, r.Text)
	}
	last := entries[len(entries)-1].Seq
	s.sent = last
	if !s.c.Ack {
		s.acked = last
		return s.acked, nil
	}
	if r.AckID == nil {
		return s.acked, fmt.Errorf("audit: hec sink %s: ack enabled but the collector returned no ackId (is useACK set on the token?)", s.c.Name)
	}
	s.pending = append(s.pending, hecBatch{ackID: *r.AckID, last: last, at: s.now()})
	return s.acked, nil
}

// ErrAckTimeout: a HEC batch was not acknowledged within AckTimeout.
var ErrAckTimeout = errors.New("audit: hec: acknowledgement timed out")

// Sync implements Sink: it polls /services/collector/ack for the pending
// batches and advances over the acknowledged prefix. A batch whose ack is
// still false after AckTimeout fails the sink, so the pump sends it again.
func (s *HECSink) Sync(ctx context.Context) (Seq, error) {
	if len(s.pending) == 0 {
		return s.acked, nil
	}
	var q struct {
		Acks []uint64 `json:"acks"`
	}
	for _, b := range s.pending {
		if !b.passed {
			q.Acks = append(q.Acks, b.ackID)
		}
	}
	if len(q.Acks) > 0 {
		body, _ := json.Marshal(&q)
		resp, err := s.request(ctx, "/services/collector/ack?channel="+url.QueryEscape(s.c.Channel), body)
		if err != nil {
			return s.acked, fmt.Errorf("audit: hec sink %s: ack: %w", s.c.Name, err)
		}
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		var r struct {
			Acks map[string]bool `json:"acks"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(rb, &r) != nil {
			return s.acked, fmt.Errorf("audit: hec sink %s: ack: HTTP %d: %s", s.c.Name, resp.StatusCode, bytes.TrimSpace(rb))
		}
		for i := range s.pending {
			if r.Acks[strconv.FormatUint(s.pending[i].ackID, 10)] {
				s.pending[i].passed = true
			}
		}
	}
	i := 0
	for i < len(s.pending) && s.pending[i].passed {
		s.acked = s.pending[i].last
		i++
	}
	s.pending = append(s.pending[:0], s.pending[i:]...)
	if len(s.pending) > 0 && s.now().Sub(s.pending[0].at) > s.c.AckTimeout {
		return s.acked, fmt.Errorf("%w: ackId %d (seq up to %d) after %v", ErrAckTimeout, s.pending[0].ackID, s.pending[0].last, s.c.AckTimeout)
	}
	return s.acked, nil
}

// Reset implements Sink: unacknowledged batches are forgotten and sent
// again by the pump.
func (s *HECSink) Reset() { s.pending = s.pending[:0] }

// Close implements Sink.
func (s *HECSink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
