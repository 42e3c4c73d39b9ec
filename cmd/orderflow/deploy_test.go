package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/orderflow/orderflow/internal/httpapi"
)

// The deploy/ files are not run here (no Docker engine, no Kubernetes):
// these tests check that they agree with the binary: every ORDERFLOW_*
// variable and config key is a flag of `orderflow run` with a valid value,
// ports, paths and probe paths match the HTTP API, and the grace period
// outlasts the shutdown timeout.

const deployDir = "../../deploy"

// runFlags is the FlagSet of `orderflow run`.
func runFlags(t *testing.T) *pflag.FlagSet {
	t.Helper()
	return newRunCmd().Flags()
}

// flagOfEnv returns the flag an ORDERFLOW_* variable sets.
func flagOfEnv(t *testing.T, fs *pflag.FlagSet, env string) *pflag.Flag {
	t.Helper()
	if !strings.HasPrefix(env, envPrefix) {
		return nil
	}
	name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, envPrefix), "_", "-"))
	f := fs.Lookup(name)
	if f == nil || envName(name) != env {
		t.Errorf("%s sets no flag of `orderflow run` (no --%s)", env, name)
		return nil
	}
	return f
}

// applyEnv loads env (and the config file it names) into a fresh run
// FlagSet, as `orderflow run` would, and returns it.
func applyEnv(t *testing.T, env map[string]string) *pflag.FlagSet {
	t.Helper()
	fs := runFlags(t)
	for k := range env {
		flagOfEnv(t, fs, k)
	}
	if _, err := applyConfig(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatalf("the binary refuses this configuration: %v", err)
	}
	return fs
}

func readYAMLDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

// at walks a YAML tree: keys for maps, ints for lists.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not a mapping", path)
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: not a list of %d", path, k+1)
			}
			v = l[k]
		}
	}
	return v
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := yaml.Marshal(x)
		return strings.TrimSpace(string(b))
	}
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return p
}

func TestDeployCompose(t *testing.T) {
	doc := readYAMLDocs(t, filepath.Join(deployDir, "docker-compose.yml"))[0]
	// Compose v2 (the Compose Specification): no obsolete `version` key,
	// and the file says which Compose it is for.
	if _, ok := doc["version"]; ok {
		t.Error("the compose file has a version key, obsolete in Compose v2")
	}
	if raw, err := os.ReadFile(filepath.Join(deployDir, "docker-compose.yml")); err != nil || !strings.Contains(string(raw), "Docker Compose v2") {
		t.Errorf("the compose file does not say it is for Docker Compose v2 (%v)", err)
	}
	services := at(t, doc, "services").(map[string]any)
	var targets []string
	instances := 0
	for name, svc := range services {
		if !strings.HasPrefix(name, "orderflow") {
			continue
		}
		instances++
		if got := str(at(t, svc, "command", 0)); got != "run" {
			t.Errorf("%s: command %q, want run", name, got)
		}
		env := map[string]string{}
		for k, v := range at(t, svc, "environment").(map[string]any) {
			env[k] = str(v)
		}
		fs := applyEnv(t, env)
		addr := fs.Lookup("http-addr").Value.String()
		// The published port maps to the API's port.
		published := str(at(t, svc, "ports", 0))
		if !strings.HasSuffix(published, ":"+port(t, addr)) {
			t.Errorf("%s: ports %q do not publish --http-addr %s", name, published, addr)
		}
		adv, err := url.Parse(fs.Lookup("advertise-url").Value.String())
		if err != nil || adv.Hostname() != name || adv.Port() != port(t, addr) {
			t.Errorf("%s: --advertise-url %v is not http://%s:%s", name, adv, name, port(t, addr))
		}
		if id := fs.Lookup("instance-id").Value.String(); id != name {
			t.Errorf("%s: instance id %q; want the service name (unique, stable)", name, id)
		}
		vol := str(at(t, svc, "volumes", 0))
		if !strings.HasSuffix(vol, ":"+fs.Lookup("state-dir").Value.String()) {
			t.Errorf("%s: volume %q is not mounted at --state-dir %s", name, vol, fs.Lookup("state-dir").Value)
		}
		grace, err := time.ParseDuration(str(at(t, svc, "stop_grace_period")))
		if sd, _ := time.ParseDuration(fs.Lookup("shutdown-timeout").Value.String()); err != nil || grace <= sd {
			t.Errorf("%s: stop_grace_period %v must exceed --shutdown-timeout %v", name, grace, sd)
		}
		targets = append(targets, name+":"+port(t, addr))
	}
	if instances != 2 {
		t.Errorf("%d orderflow services, want 2", instances)
	}
	prom := readYAMLDocs(t, filepath.Join(deployDir, "prometheus", "prometheus.yml"))[0]
	job := at(t, prom, "scrape_configs", 0)
	if p := str(at(t, job, "metrics_path")); p != httpapi.PathMetrics {
		t.Errorf("prometheus metrics_path %q, want %s", p, httpapi.PathMetrics)
	}
	got := at(t, job, "static_configs", 0, "targets").([]any)
	for _, want := range targets {
		found := false
		for _, g := range got {
			found = found || str(g) == want
		}
		if !found {
			t.Errorf("prometheus does not scrape %s (targets %v)", want, got)
		}
	}
}

func TestDeployKubernetes(t *testing.T) {
	byKind := map[string]map[string]any{}
	files, err := filepath.Glob(filepath.Join(deployDir, "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		for _, d := range readYAMLDocs(t, f) {
			byKind[str(d["kind"])] = d
		}
	}
	for _, k := range []string{"StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap", "ServiceMonitor"} {
		if byKind[k] == nil {
			t.Fatalf("no %s in deploy/k8s", k)
		}
	}
	sts, svc, cm, sm := byKind["StatefulSet"], byKind["Service"], byKind["ConfigMap"], byKind["ServiceMonitor"]
	pod := at(t, sts, "spec", "template", "spec")
	c := at(t, pod, "containers", 0)

	// The environment, with $(VAR) references and the ConfigMap file.
	env := map[string]string{}
	fieldRefs := map[string]string{}
	for _, e := range at(t, c, "env").([]any) {
		name := str(at(t, e, "name"))
		if fr := at(t, e, "valueFrom"); fr != nil {
			if p, ok := fr.(map[string]any)["fieldRef"]; ok {
				fieldRefs[name] = str(at(t, p, "fieldPath"))
				env[name] = "orderflow-0" // what the kubelet substitutes for the first pod
			}
			continue
		}
		v := str(at(t, e, "value"))
		for k, val := range env {
			v = strings.ReplaceAll(v, "$("+k+")", val)
		}
		env[name] = v
	}
	if id := env["ORDERFLOW_INSTANCE_ID"]; id != "orderflow-0" || fieldRefs["POD_NAME"] != "metadata.name" {
		t.Errorf("instance id %q is not the pod name", id)
	}
	// Mount the ConfigMap where ORDERFLOW_CONFIG points.
	cfgPath := env["ORDERFLOW_CONFIG"]
	mounts := map[string]string{} // volume -> mount path
	for _, m := range at(t, c, "volumeMounts").([]any) {
		mounts[str(at(t, m, "name"))] = str(at(t, m, "mountPath"))
	}
	var cmVolume string
	for _, v := range at(t, pod, "volumes").([]any) {
		if cmRef, ok := v.(map[string]any)["configMap"]; ok && str(at(t, cmRef, "name")) == str(at(t, cm, "metadata", "name")) {
			cmVolume = str(at(t, v, "name"))
		}
	}
	key := strings.TrimPrefix(cfgPath, mounts[cmVolume]+"/")
	data, ok := at(t, cm, "data").(map[string]any)[key]
	if cmVolume == "" || !ok {
		t.Fatalf("ORDERFLOW_CONFIG %s is not a key of the mounted ConfigMap (mounted at %q)", cfgPath, mounts[cmVolume])
	}
	file := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(file, []byte(str(data)), 0o600); err != nil {
		t.Fatal(err)
	}
	env["ORDERFLOW_CONFIG"] = file
	delete(env, "POD_NAME")
	fs := applyEnv(t, env)

	if adv := fs.Lookup("advertise-url").Value.String(); adv != "http://orderflow-0."+str(at(t, svc, "metadata", "name"))+":"+port(t, fs.Lookup("http-addr").Value.String()) {
		t.Errorf("advertise URL %q is not the pod's name in the headless Service", adv)
	}
	if str(at(t, sts, "spec", "serviceName")) != str(at(t, svc, "metadata", "name")) || str(at(t, svc, "spec", "clusterIP")) != "None" {
		t.Errorf("the StatefulSet's serviceName is not the headless Service")
	}
	if mounts["state"] != fs.Lookup("state-dir").Value.String() {
		t.Errorf("the state volume is mounted at %q, --state-dir is %q", mounts["state"], fs.Lookup("state-dir").Value)
	}
	if str(at(t, sts, "spec", "volumeClaimTemplates", 0, "metadata", "name")) != "state" {
		t.Errorf("the state volume is not a volumeClaimTemplate")
	}
	httpPort := port(t, fs.Lookup("http-addr").Value.String())
	if p := str(at(t, c, "ports", 0, "containerPort")); p != httpPort || str(at(t, c, "ports", 0, "name")) != "http" {
		t.Errorf("container port %s (%s), want http %s (--http-addr)", p, str(at(t, c, "ports", 0, "name")), httpPort)
	}
	for probe, path := range map[string]string{"livenessProbe": httpapi.PathHealth, "readinessProbe": httpapi.PathReady, "startupProbe": httpapi.PathHealth} {
		if got := str(at(t, c, probe, "httpGet", "path")); got != path {
			t.Errorf("%s path %q, want %s", probe, got, path)
		}
		if got := str(at(t, c, probe, "httpGet", "port")); got != "http" && got != httpPort {
			t.Errorf("%s port %q, want http", probe, got)
		}
	}
	grace, _ := time.ParseDuration(str(at(t, pod, "terminationGracePeriodSeconds")) + "s")
	sd, _ := time.ParseDuration(fs.Lookup("shutdown-timeout").Value.String())
	if grace <= sd {
		t.Errorf("terminationGracePeriodSeconds %v must exceed --shutdown-timeout %v", grace, sd)
	}
	if p := str(at(t, svc, "spec", "ports", 0, "targetPort")); p != "http" && p != httpPort {
		t.Errorf("Service targetPort %q", p)
	}
	ep := at(t, sm, "spec", "endpoints", 0)
	if str(at(t, ep, "port")) != str(at(t, svc, "spec", "ports", 0, "name")) || str(at(t, ep, "path")) != httpapi.PathMetrics {
		t.Errorf("ServiceMonitor endpoint %v does not scrape the Service's port at %s", ep, httpapi.PathMetrics)
	}
	sel := at(t, sts, "spec", "selector", "matchLabels")
	for _, obj := range []any{at(t, svc, "spec", "selector"), at(t, byKind["PodDisruptionBudget"], "spec", "selector", "matchLabels"), at(t, sm, "spec", "selector", "matchLabels")} {
		if str(obj) != str(sel) {
			t.Errorf("selector %v differs from the StatefulSet's %v", obj, sel)
		}
	}
}

// TestDeployDockerfile: the image's ENV are flags, it runs as non-root and
// builds a static binary.
func TestDeployDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	fs := runFlags(t)
	for _, m := range regexp.MustCompile(`(ORDERFLOW_[A-Z_]+)=`).FindAllStringSubmatch(s, -1) {
		flagOfEnv(t, fs, m[1])
	}
	for _, want := range []string{"CGO_ENABLED=0", "USER 65532", "./cmd/orderflow", `CMD ["run"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// TestDefaultAdvertiseURL: without --advertise-url, the other instances
// reach this one at --http-addr, with the host name for an address that
// listens on every interface.
func TestDefaultAdvertiseURL(t *testing.T) {
	host := func() (string, error) { return "pod-0", nil }
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		":8080":          "http://pod-0:8080",
		"0.0.0.0:9000":   "http://pod-0:9000",
		"[::]:8080":      "http://pod-0:8080",
		"[::1]:8080":     "http://[::1]:8080",
		"example:80":     "http://example:80",
	} {
		got, err := defaultAdvertiseURL(addr, host)
		if err != nil || got != want {
			t.Errorf("defaultAdvertiseURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	if _, err := defaultAdvertiseURL("8080", host); err == nil {
		t.Error("an address without a port was accepted")
	}
}
