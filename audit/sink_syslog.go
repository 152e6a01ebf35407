package audit

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// SyslogConfig configures a sink that sends RFC 5424 messages over TCP with
// octet-counting framing (RFC 6587 §3.4.1), optionally over TLS (RFC 5425).
type SyslogConfig struct {
	// Name keys the sink's cursor (default "syslog:"+Address).
	Name string `yaml:"name" mapstructure:"name"`
	// Address is host:port of the syslog receiver.
	Address string `yaml:"address" mapstructure:"address"`
	// TLS enables RFC 5425 transport with the settings in TLSConfig.
	TLS *TLSConfig `yaml:"tls" mapstructure:"tls"`
	// Render tunes the messages; Render.Message chooses MSG: jsonl
	// (default), cef or leef.
	Render RenderOptions `yaml:"render" mapstructure:"render"`
	// ConfirmAfter: plain syslog has no acknowledgement, so a message
	// counts as delivered once the connection has stayed open this long
	// after it was written (default 1s). When the connection breaks, the
	// messages written in the last ConfirmAfter are sent again: that is the
	// at-least-once window.
	ConfirmAfter time.Duration `yaml:"confirm_after" mapstructure:"confirm_after"`
	// DialTimeout bounds connecting and the TLS handshake (default 5s).
	DialTimeout time.Duration `yaml:"dial_timeout" mapstructure:"dial_timeout"`
}

// TLSConfig is the client side of RFC 5425: the server certificate is
// always verified, against CAFile (or the system roots) and ServerName.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the receiver's
	// certificate (default: the system roots).
	CAFile string `yaml:"ca_file" mapstructure:"ca_file"`
	// CertFile and KeyFile are an optional client certificate (PEM), for
	// receivers that authenticate senders (rsyslog StreamDriverAuthMode).
	CertFile string `yaml:"cert_file" mapstructure:"cert_file"`
	KeyFile  string `yaml:"key_file" mapstructure:"key_file"`
	// ServerName is the name verified in the server certificate (default:
	// the host of Address).
	ServerName string `yaml:"server_name" mapstructure:"server_name"`
}

// Validate checks c and fills defaults.
func (c *SyslogConfig) Validate() error {
	if c.Address == "" {
		return errors.New("audit: syslog sink: address is required")
	}
	host, _, err := net.SplitHostPort(c.Address)
	if err != nil {
		return fmt.Errorf("audit: syslog sink: address %q: %w", c.Address, err)
	}
	if c.Name == "" {
		c.Name = "syslog:" + c.Address
	}
	if c.ConfirmAfter == 0 {
		c.ConfirmAfter = time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.ConfirmAfter < 0 || c.DialTimeout < 0 {
		return fmt.Errorf("audit: syslog sink %s: negative duration", c.Name)
	}
	if t := c.TLS; t != nil {
		if t.ServerName == "" {
			t.ServerName = host
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			return fmt.Errorf("audit: syslog sink %s: cert_file and key_file go together", c.Name)
		}
	}
	return c.Render.Validate()
}

func (t *TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{ServerName: t.ServerName, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("no certificate in %s", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// SyslogSink sends entries to a syslog receiver over TCP or TLS.
type SyslogSink struct {
	c   SyslogConfig
	tc  *tls.Config
	r   *Renderer
	now func() time.Time

	conn     net.Conn
	dead     chan struct{} // closed when the receiver closes the connection
	deadErr  error
	inflight []written // written, not yet confirmed, oldest first
	acked    Seq
	buf, msg []byte
}

type written struct {
	seq Seq
	at  time.Time
}

var _ Sink = (*SyslogSink)(nil)

// NewSyslogSink validates c and returns the sink; it connects on first use.
func NewSyslogSink(c SyslogConfig) (*SyslogSink, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s := &SyslogSink{c: c, now: time.Now}
	var err error
	if s.r, err = NewRenderer(FormatSyslog, c.Render); err != nil {
		return nil, err
	}
	if c.TLS != nil {
		if s.tc, err = c.TLS.config(); err != nil {
			return nil, fmt.Errorf("audit: syslog sink %s: tls: %w", c.Name, err)
		}
	}
	return s, nil
}

// Name implements Sink.
func (s *SyslogSink) Name() string { return s.c.Name }

func (s *SyslogSink) dial(ctx context.Context) error {
	d := &net.Dialer{Timeout: s.c.DialTimeout, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if s.tc != nil {
		td := &tls.Dialer{NetDialer: d, Config: s.tc}
		conn, err = td.DialContext(ctx, "tcp", s.c.Address)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.c.Address)
	}
	if err != nil {
		return err
	}
	s.conn, s.dead, s.deadErr = conn, make(chan struct{}), nil
	// A syslog receiver never sends: a read returns only when it closes
	// or resets the connection, which is how a stopped receiver is noticed
	// before the next write (that would otherwise succeed into the void).
	go func(conn net.Conn, dead chan struct{}) {
		var b [512]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				s.deadErr = err
				close(dead)
				return
			}
		}
	}(conn, s.dead)
	return nil
}

func (s *SyslogSink) isDead() error {
	if s.conn == nil {
		return errors.New("not connected")
	}
	select {
	case <-s.dead:
		if s.deadErr != nil {
			return fmt.Errorf("receiver closed the connection: %w", s.deadErr)
		}
		return errors.New("receiver closed the connection")
	default:
		return nil
	}
}

// Send implements Sink: it writes one octet-counted frame per entry.
func (s *SyslogSink) Send(ctx context.Context, entries []Entry) (Seq, error) {
	if s.conn == nil {
		if err := s.dial(ctx); err != nil {
			return s.acked, fmt.Errorf("audit: syslog sink %s: %w", s.c.Name, err)
		}
	}
	if err := s.isDead(); err != nil {
		return s.acked, fmt.Errorf("audit: syslog sink %s: %w", s.c.Name, err)
	}
	s.buf = s.buf[:0]
	for i := range entries {
		s.msg = s.r.Append(s.msg[:0], &entries[i])
		// RFC 6587 §3.4.1: SYSLOG-FRAME = MSG-LEN SP SYSLOG-MSG
		s.buf = appendUint(s.buf, uint64(len(s.msg)))
		s.buf = append(s.buf, ' ')
		s.buf = append(s.buf, s.msg...)
	}
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetWriteDeadline(dl)
	}
	if _, err := s.conn.Write(s.buf); err != nil {
		return s.acked, fmt.Errorf("audit: syslog sink %s: %w", s.c.Name, err)
	}
	s.inflight = append(s.inflight, written{entries[len(entries)-1].Seq, s.now()})
	return s.Sync(ctx)
}

// Sync implements Sink: it confirms what was written at least ConfirmAfter
// ago on a connection that is still open.
func (s *SyslogSink) Sync(context.Context) (Seq, error) {
	if len(s.inflight) == 0 {
		return s.acked, nil
	}
	if err := s.isDead(); err != nil {
		return s.acked, fmt.Errorf("audit: syslog sink %s: %w", s.c.Name, err)
	}
	cut := s.now().Add(-s.c.ConfirmAfter)
	i := 0
	for i < len(s.inflight) && !s.inflight[i].at.After(cut) {
		s.acked = s.inflight[i].seq
		i++
	}
	s.inflight = append(s.inflight[:0], s.inflight[i:]...)
	return s.acked, nil
}

// Reset implements Sink: it drops the connection and the unconfirmed
// writes; the pump sends them again.
func (s *SyslogSink) Reset() {
	if s.conn != nil {
		s.conn.Close()
		<-s.dead
		s.conn = nil
	}
	s.inflight = s.inflight[:0]
}

// Close implements Sink.
func (s *SyslogSink) Close() error {
	s.Reset()
	return nil
}
