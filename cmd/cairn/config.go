package main

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/cairn-archive/cairn/archive/payload"
)

//go:embed example.yaml
var exampleYAML []byte

// Config is the whole configuration. Field tags are the YAML keys; every key
// appears, with its comment and default, in example.yaml.
type Config struct {
	DataDir   string          `mapstructure:"data_dir"`
	Scheduler string          `mapstructure:"scheduler"`
	Log       LogConfig       `mapstructure:"log"`
	Store     StoreConfig     `mapstructure:"store"`
	Keys      KeysConfig      `mapstructure:"keys"`
	Ledger    LedgerConfig    `mapstructure:"ledger"`
	Ingest    IngestConfig    `mapstructure:"ingest"`
	Audit     AuditConfig     `mapstructure:"audit"`
	SMTP      SMTPConfig      `mapstructure:"smtp"`
	IMAP      IMAPConfig      `mapstructure:"imap"`
	Accounts  AccountsConfig  `mapstructure:"accounts"`
	Harvest   HarvestConfig   `mapstructure:"harvest"`
	Retention RetentionConfig `mapstructure:"retention"`
	HTTP      HTTPConfig      `mapstructure:"http"`

	file string // the file it came from, if any
}

// LogConfig configures the process log.
type LogConfig struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// StoreConfig selects and configures the object store.
type StoreConfig struct {
	Type string        `mapstructure:"type"`
	FS   FSStoreConfig `mapstructure:"fs"`
	S3   S3StoreConfig `mapstructure:"s3"`
}

// FSStoreConfig configures the filesystem store.
type FSStoreConfig struct {
	Dir    string `mapstructure:"dir"`
	Layout string `mapstructure:"layout"`
}

// S3StoreConfig configures the S3 store.
type S3StoreConfig struct {
	Endpoint      string        `mapstructure:"endpoint"`
	Region        string        `mapstructure:"region"`
	Bucket        string        `mapstructure:"bucket"`
	Prefix        string        `mapstructure:"prefix"`
	AccessKey     string        `mapstructure:"access_key"`
	SecretKey     string        `mapstructure:"secret_key"`
	SecretKeyFile string        `mapstructure:"secret_key_file"`
	Secure        bool          `mapstructure:"secure"`
	CAFile        string        `mapstructure:"ca_file"`
	Lookup        string        `mapstructure:"lookup"`
	CreateBucket  bool          `mapstructure:"create_bucket"`
	ObjectLock    bool          `mapstructure:"object_lock"`
	MaxRetries    int           `mapstructure:"max_retries"`
	Timeout       time.Duration `mapstructure:"timeout"`
}

// KeysConfig names the key files.
type KeysConfig struct {
	ArchiveKey       string   `mapstructure:"archive_key"`
	SigningKey       string   `mapstructure:"signing_key"`
	EscrowRecipients []string `mapstructure:"escrow_recipients"`
}

// LedgerConfig configures checkpoints.
type LedgerConfig struct {
	CheckpointEvery    uint64        `mapstructure:"checkpoint_every"`
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
}

// IngestConfig holds limits shared by every source.
type IngestConfig struct {
	MaxMessageSize ByteSize `mapstructure:"max_message_size"`
	Compression    string   `mapstructure:"compression"`
}

// compression is ingest.compression (checked by Validate).
func (c *Config) compression() payload.Compression {
	p, _ := payload.ParseCompression(c.Ingest.Compression)
	return p
}

// ByteSize is a size in bytes written as "50MiB", "10KiB", "512" or "1GB".
type ByteSize int64

// ParseByteSize parses a size with an optional B, KB/KiB, MB/MiB, GB/GiB unit.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"B", 1}}
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KiB, MiB, GiB)", s)
	}
	return ByteSize(n * mult), nil
}

func byteSizeHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(ByteSize(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		return ParseByteSize(v)
	case int:
		return ByteSize(v), nil
	case int64:
		return ByteSize(v), nil
	case float64:
		return ByteSize(v), nil
	}
	return data, nil
}

// loadConfig reads the configuration: the embedded defaults (example.yaml),
// then the file (flag, $CAIRN_CONFIG, or <data_dir>/cairn.yaml when it
// exists), then CAIRN_* environment variables.
func loadConfig(file string) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	// Register every key with its default so that environment variables
	// reach keys the file does not mention.
	var defaults map[string]any
	if err := yaml.Unmarshal(exampleYAML, &defaults); err != nil {
		return nil, fmt.Errorf("config: embedded example: %w", err)
	}
	for _, k := range flattenKeys("", defaults) {
		v.SetDefault(k.key, k.value)
	}
	v.SetEnvPrefix("CAIRN")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	if file == "" {
		file = os.Getenv("CAIRN_CONFIG")
	}
	if file == "" {
		dd := v.GetString("data_dir")
		if p := filepath.Join(dd, "cairn.yaml"); fileExists(p) {
			file = p
		}
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		err = v.MergeConfig(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", file, err)
		}
	}
	var cfg Config
	err := v.UnmarshalExact(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
		byteSizeHook,
	)))
	if err != nil {
		where := "configuration"
		if file != "" {
			where = file
		}
		return nil, fmt.Errorf("config: %s: %w", where, err)
	}
	cfg.file = file
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

type flatKey struct {
	key   string
	value any
}

func flattenKeys(prefix string, m map[string]any) []flatKey {
	var out []flatKey
	for k, val := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := val.(map[string]any); ok {
			out = append(out, flattenKeys(key, sub)...)
			continue
		}
		out = append(out, flatKey{key, val})
	}
	return out
}

// Validate reports the first problem in the configuration, naming the key
// and the fix.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("config: data_dir is empty")
	}
	switch c.Scheduler {
	case "batch", "inherit":
	default:
		return fmt.Errorf("config: scheduler %q: want batch or inherit", c.Scheduler)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		return fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	switch c.Store.Type {
	case "fs":
		switch c.Store.FS.Layout {
		case "volumes", "files":
		default:
			return fmt.Errorf("config: store.fs.layout %q: want volumes or files", c.Store.FS.Layout)
		}
	case "s3":
		s := c.Store.S3
		if s.Endpoint == "" || s.Bucket == "" {
			return fmt.Errorf("config: store.type is s3, so store.s3.endpoint and store.s3.bucket must be set")
		}
		if s.AccessKey == "" {
			return fmt.Errorf("config: store.s3.access_key is empty")
		}
		if s.SecretKey == "" && s.SecretKeyFile == "" {
			return fmt.Errorf("config: set store.s3.secret_key_file (or store.s3.secret_key)")
		}
		switch s.Lookup {
		case "auto", "dns", "path", "":
		default:
			return fmt.Errorf("config: store.s3.lookup %q: want auto, dns or path", s.Lookup)
		}
	default:
		return fmt.Errorf("config: store.type %q: want fs or s3", c.Store.Type)
	}
	if c.Ledger.CheckpointEvery == 0 {
		return fmt.Errorf("config: ledger.checkpoint_every must be at least 1")
	}
	if c.Ledger.CheckpointInterval < time.Second {
		return fmt.Errorf("config: ledger.checkpoint_interval %v: must be at least 1s", c.Ledger.CheckpointInterval)
	}
	if c.Ingest.MaxMessageSize < 1024 {
		return fmt.Errorf("config: ingest.max_message_size %d is too small", c.Ingest.MaxMessageSize)
	}
	if _, err := payload.ParseCompression(c.Ingest.Compression); err != nil {
		return fmt.Errorf("config: ingest.compression %q: want fast or compact", c.Ingest.Compression)
	}
	if err := c.Audit.Validate(); err != nil {
		return err
	}
	if err := c.SMTP.Validate(); err != nil {
		return err
	}
	if err := c.IMAP.Validate(); err != nil {
		return err
	}
	if err := c.Accounts.Validate(); err != nil {
		return err
	}
	if err := c.Harvest.Validate(); err != nil {
		return err
	}
	if err := c.Retention.Validate(); err != nil {
		return err
	}
	if err := c.HTTP.Validate(); err != nil {
		return err
	}
	return nil
}

func (c *Config) archiveKeyPath() string {
	return orDefault(c.Keys.ArchiveKey, filepath.Join(c.DataDir, "keys", "archive.key"))
}

func (c *Config) signingKeyPath() string {
	return orDefault(c.Keys.SigningKey, filepath.Join(c.DataDir, "keys", "ledger.key"))
}

func (c *Config) fsDir() string {
	return orDefault(c.Store.FS.Dir, filepath.Join(c.DataDir, "objects"))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
