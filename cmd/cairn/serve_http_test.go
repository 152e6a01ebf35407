package main

import (
	"strings"
	"testing"
)

func TestHTTPConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg  HTTPConfig
		fail string
	}{
		{HTTPConfig{Enabled: true, Listen: "127.0.0.1:8080"}, ""},
		{HTTPConfig{Enabled: true, Listen: "[::1]:8080"}, ""},
		{HTTPConfig{Enabled: false, Listen: "0.0.0.0:80"}, ""},
		{HTTPConfig{Enabled: true, Listen: "0.0.0.0:8443"}, "not a loopback address"},
		{HTTPConfig{Enabled: true, Listen: ":8443"}, "not a loopback address"},
		{HTTPConfig{Enabled: true, Listen: "0.0.0.0:8443", TLSSelfSigned: true}, ""},
		{HTTPConfig{Enabled: true, Listen: "0.0.0.0:8443", TLSCert: "c.pem", TLSKey: "k.pem"}, ""},
		{HTTPConfig{Enabled: true, Listen: "0.0.0.0:8443", TLSCert: "c.pem"}, "set together"},
		{HTTPConfig{Enabled: true, Listen: ""}, "http.listen is empty"},
		{HTTPConfig{Enabled: true, Listen: "8080"}, "want host:port"},
		{HTTPConfig{Enabled: true, Listen: "127.0.0.1:8080", MaxResults: -1}, "negative"},
	} {
		err := c.cfg.Validate()
		switch {
		case c.fail == "" && err != nil:
			t.Errorf("%+v: %v", c.cfg, err)
		case c.fail != "" && (err == nil || !strings.Contains(err.Error(), c.fail)):
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.fail)
		}
	}
}
