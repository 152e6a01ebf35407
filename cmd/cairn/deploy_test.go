package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The files in deploy/ are checked here: each configuration they carry
// loads as cairn serve would load it, and the compose file, the
// Kubernetes manifest and the systemd unit agree with it (ports, paths,
// secrets). deploy_integration_test.go runs the real tools on them
// (systemd-analyze verify, docker-compose config).

const deployDir = "../../deploy"

// loadDeployConfig loads a configuration as the deployments run it: the
// S3 secret from the environment.
func loadDeployConfig(t *testing.T, data []byte) *Config {
	t.Helper()
	t.Setenv("CAIRN_STORE_S3_SECRET_KEY", "from-the-environment")
	cfg, err := loadConfigFrom(t, data)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.S3.SecretKey != "from-the-environment" {
		t.Fatalf("the S3 secret did not come from CAIRN_STORE_S3_SECRET_KEY: %q", cfg.Store.S3.SecretKey)
	}
	return cfg
}

func port(t *testing.T, listen string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("listen %q: %v", listen, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// m walks a decoded YAML document: m(doc, "spec", "template") returns the
// map there, failing the test if a step is missing.
func m(t *testing.T, v any, path ...string) map[string]any {
	t.Helper()
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%v: not a mapping at %q", path, p)
		}
		v = mm[p]
	}
	out, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v: not a mapping (%T)", path, v)
	}
	return out
}

func list(t *testing.T, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("not a list: %T", v)
	}
	return l
}

func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	services := m(t, doc, "services")
	s3, cairn := m(t, services, "s3"), m(t, services, "cairn")
	// The S3 server keeps versions (Object Lock needs them) on volumes.
	cmd := strings.Join(anyStrings(t, s3["command"]), " ")
	if !strings.Contains(cmd, "posix --versioning-dir") {
		t.Errorf("s3 command %q: versitygw needs --versioning-dir for Object Lock", cmd)
	}
	if img, _ := s3["image"].(string); !strings.Contains(img, "versitygw:v") {
		t.Errorf("s3 image %q: pin a version", img)
	}
	// Cairn's configuration is the mounted file, and it loads.
	var cfgFile string
	for _, v := range list(t, cairn["volumes"]) {
		src, dst, _ := strings.Cut(v.(string), ":")
		if strings.HasPrefix(dst, "/etc/cairn/cairn.yaml") {
			cfgFile = filepath.Join(deployDir, src)
		}
	}
	if cfgFile == "" {
		t.Fatal("cairn mounts no /etc/cairn/cairn.yaml")
	}
	data, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadDeployConfig(t, data)
	if !slices.Contains(anyStrings(t, cairn["command"]), "/etc/cairn/cairn.yaml") {
		t.Error("cairn serve is not given /etc/cairn/cairn.yaml")
	}
	env := m(t, cairn, "environment")
	if _, ok := env["CAIRN_STORE_S3_SECRET_KEY"]; !ok {
		t.Error("the S3 secret does not reach cairn")
	}
	// Cairn talks to the s3 service on the port it listens on.
	host, p, _ := net.SplitHostPort(cfg.Store.S3.Endpoint)
	if host != "s3" || !strings.Contains(cmd, "--port :"+p) || !cfg.Store.S3.ObjectLock || !cfg.Store.S3.CreateBucket {
		t.Errorf("store.s3 %+v does not reach the s3 service (%s) with Object Lock", cfg.Store.S3, cmd)
	}
	if cfg.DataDir != "/var/lib/cairn" || !slices.Contains(anyStrings(t, cairn["volumes"]), "cairn-data:/var/lib/cairn") {
		t.Errorf("data_dir %s is not the cairn-data volume", cfg.DataDir)
	}
	// Each published port reaches a listener.
	targets := map[int]bool{}
	for _, p := range anyStrings(t, cairn["ports"]) {
		_, tgt, _ := strings.Cut(p, ":")
		n, _ := strconv.Atoi(tgt)
		targets[n] = true
	}
	for name, l := range map[string]string{"smtp.listen": cfg.SMTP.Listen, "imap.tls_listen": cfg.IMAP.TLSListen, "http.listen": cfg.HTTP.Listen} {
		if !targets[port(t, l)] {
			t.Errorf("%s %s is not published (ports %v)", name, l, targets)
		}
		if host, _, _ := net.SplitHostPort(l); host != "0.0.0.0" {
			t.Errorf("%s %s: inside a container, listen on 0.0.0.0", name, l)
		}
	}
}

func anyStrings(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, x := range list(t, v) {
		out = append(out, x.(string))
	}
	return out
}

func TestKubernetesManifest(t *testing.T) {
	f, err := os.Open(filepath.Join(deployDir, "kubernetes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs := map[string]map[string]any{} // kind/name
	dec := yaml.NewDecoder(f)
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kind, _ := doc["kind"].(string)
		name, _ := m(t, doc, "metadata")["name"].(string)
		if doc["apiVersion"] == nil || kind == "" || name == "" {
			t.Fatalf("object without apiVersion, kind or name: %v", doc)
		}
		objs[kind+"/"+name] = doc
	}
	for _, want := range []string{"ConfigMap/cairn-config", "PersistentVolumeClaim/cairn-data", "StatefulSet/cairn", "Service/cairn"} {
		if objs[want] == nil {
			t.Fatalf("no %s in the manifest", want)
		}
	}
	cfg := loadDeployConfig(t, []byte(m(t, objs["ConfigMap/cairn-config"], "data")["cairn.yaml"].(string)))

	sts := objs["StatefulSet/cairn"]
	if r := m(t, sts, "spec")["replicas"]; r != 1 {
		t.Errorf("replicas %v: one writer per archive", r)
	}
	pod := m(t, sts, "spec", "template", "spec")
	if sel, lbl := m(t, sts, "spec", "selector", "matchLabels"), m(t, sts, "spec", "template", "metadata", "labels"); sel["app.kubernetes.io/name"] != lbl["app.kubernetes.io/name"] {
		t.Error("the selector does not match the pod's labels")
	}
	if sc := m(t, pod, "securityContext"); sc["runAsNonRoot"] != true {
		t.Error("the pod may run as root")
	}
	volumes := map[string]map[string]any{}
	for _, v := range list(t, pod["volumes"]) {
		vm := v.(map[string]any)
		volumes[vm["name"].(string)] = vm
	}
	// Every volume source exists in the manifest or is a documented Secret.
	secrets := map[string]bool{"cairn-s3": false, "cairn-tls": false}
	for name, v := range volumes {
		switch {
		case v["persistentVolumeClaim"] != nil:
			if objs["PersistentVolumeClaim/"+m(t, v, "persistentVolumeClaim")["claimName"].(string)] == nil {
				t.Errorf("volume %s: no such PVC", name)
			}
		case v["configMap"] != nil:
			if objs["ConfigMap/"+m(t, v, "configMap")["name"].(string)] == nil {
				t.Errorf("volume %s: no such ConfigMap", name)
			}
		case v["secret"] != nil:
			s := m(t, v, "secret")["secretName"].(string)
			if _, ok := secrets[s]; !ok {
				t.Errorf("volume %s: Secret %s is not among the documented ones", name, s)
			}
			secrets[s] = true
		}
	}
	c := list(t, pod["containers"])[0].(map[string]any)
	if !slices.Contains(anyStrings(t, c["args"]), "/etc/cairn/cairn.yaml") {
		t.Error("serve is not given /etc/cairn/cairn.yaml")
	}
	for _, e := range list(t, c["env"]) {
		if ref, ok := e.(map[string]any)["valueFrom"]; ok {
			s := m(t, ref, "secretKeyRef")["name"].(string)
			if _, ok := secrets[s]; !ok {
				t.Errorf("env from Secret %s, not among the documented ones", s)
			}
			secrets[s] = true
		}
	}
	for s, used := range secrets {
		if !used {
			t.Errorf("the header documents Secret %s, which nothing uses", s)
		}
	}
	mounts := map[string]string{}
	for _, vm := range list(t, c["volumeMounts"]) {
		x := vm.(map[string]any)
		if volumes[x["name"].(string)] == nil {
			t.Errorf("mount of undefined volume %v", x["name"])
		}
		mounts[x["mountPath"].(string)] = x["name"].(string)
	}
	if mounts[cfg.DataDir] != "data" || mounts["/etc/cairn/cairn.yaml"] != "config" {
		t.Errorf("mounts %v: data_dir %s on the PVC, the config from the ConfigMap", mounts, cfg.DataDir)
	}
	for _, p := range []string{cfg.SMTP.TLSCert, cfg.IMAP.TLSCert, cfg.HTTP.TLSCert} {
		if filepath.Dir(p) != "/etc/cairn/tls" || mounts["/etc/cairn/tls"] != "tls" {
			t.Errorf("certificate %s is not in the tls Secret's mount", p)
		}
	}
	// Ports: each listener is a named container port; the Service and the
	// probes use the names.
	ports := map[string]int{}
	for _, p := range list(t, c["ports"]) {
		pm := p.(map[string]any)
		ports[pm["name"].(string)] = pm["containerPort"].(int)
	}
	for name, l := range map[string]string{"smtp": cfg.SMTP.Listen, "imaps": cfg.IMAP.TLSListen, "https": cfg.HTTP.Listen} {
		if ports[name] != port(t, l) {
			t.Errorf("container port %s = %d, the listener %s", name, ports[name], l)
		}
	}
	for _, probe := range []string{"startupProbe", "livenessProbe", "readinessProbe"} {
		g := m(t, c, probe, "httpGet")
		if _, ok := ports[g["port"].(string)]; !ok || g["scheme"] != "HTTPS" {
			t.Errorf("%s %v: a named port, over HTTPS (the API listens with TLS)", probe, g)
		}
	}
	if m(t, c, "readinessProbe", "httpGet")["path"] != "/readyz" || m(t, c, "livenessProbe", "httpGet")["path"] != "/healthz" {
		t.Error("probes: readiness on /readyz, liveness on /healthz")
	}
	for _, p := range list(t, m(t, objs["Service/cairn"], "spec")["ports"]) {
		tp := p.(map[string]any)["targetPort"].(string)
		if _, ok := ports[tp]; !ok {
			t.Errorf("Service targets port %s, which the container does not name", tp)
		}
	}
	sc := m(t, c, "securityContext")
	if sc["allowPrivilegeEscalation"] != false || sc["readOnlyRootFilesystem"] != true {
		t.Errorf("container securityContext %v", sc)
	}
	if g := m(t, pod, "securityContext")["runAsUser"]; g != 10001 {
		t.Errorf("runAsUser %v: the image's cairn user is 10001", g)
	}
}

// unitDirectives reads a systemd unit: section -> key -> values.
func unitDirectives(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	sec := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "["):
			sec = strings.Trim(l, "[]")
			out[sec] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || sec == "" {
				t.Fatalf("unit line %q", l)
			}
			out[sec][k] = append(out[sec][k], v)
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	u := unitDirectives(t, filepath.Join(deployDir, "cairn.service"))
	s := u["Service"]
	for k, want := range map[string]string{
		"User": "cairn", "Group": "cairn", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"PrivateTmp": "yes", "ProtectHome": "yes", "ReadWritePaths": "/var/lib/cairn", "StateDirectory": "cairn",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
		"KillSignal": "SIGTERM", "UMask": "0077",
	} {
		if !slices.Contains(s[k], want) {
			t.Errorf("[Service] %s=%v, want %s", k, s[k], want)
		}
	}
	exec := strings.Fields(s["ExecStart"][0])
	if len(exec) != 4 || exec[1] != "serve" || exec[2] != "--config" {
		t.Fatalf("ExecStart %v", exec)
	}
	if u["Install"]["WantedBy"][0] != "multi-user.target" {
		t.Error("not wanted by multi-user.target")
	}
	// The data folder it may write is the one the example config documents
	// for a system install.
	if !strings.Contains(s["ExecStart"][0], "/etc/cairn/cairn.yaml") || s["ReadWritePaths"][0] != "/var/lib/cairn" {
		t.Error("paths")
	}
}
