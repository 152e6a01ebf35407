package audit

import "fmt"

// SinksConfig is the audit.sinks section of the configuration: any number
// of sinks of each kind, all active at once.
type SinksConfig struct {
	Files  []FileConfig   `yaml:"files" mapstructure:"files"`
	Syslog []SyslogConfig `yaml:"syslog" mapstructure:"syslog"`
	HEC    []HECConfig    `yaml:"hec" mapstructure:"hec"`
}

// Validate checks every sink's config and that names are unique.
func (c *SinksConfig) Validate() error {
	_, err := c.Build()
	return err
}

// Build validates the configs and returns the sinks, for Options.Sinks.
func (c *SinksConfig) Build() ([]Sink, error) {
	var out []Sink
	names := map[string]bool{}
	add := func(s Sink, err error) error {
		if err != nil {
			return err
		}
		if names[s.Name()] {
			return fmt.Errorf("audit: two sinks named %q", s.Name())
		}
		names[s.Name()] = true
		out = append(out, s)
		return nil
	}
	for i := range c.Files {
		if err := add(NewFileSink(c.Files[i])); err != nil {
			return nil, err
		}
	}
	for i := range c.Syslog {
		if err := add(NewSyslogSink(c.Syslog[i])); err != nil {
			return nil, err
		}
	}
	for i := range c.HEC {
		if err := add(NewHECSink(c.HEC[i])); err != nil {
			return nil, err
		}
	}
	return out, nil
}
