package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// stamp sets the build stamp as -ldflags -X would, for one test.
func stamp(t *testing.T, v, c, d string) {
	old := [3]string{version, commit, date}
	version, commit, date = v, c, d
	t.Cleanup(func() { version, commit, date = old[0], old[1], old[2] })
}

// TestVersionCommandAndFlag: `orderflow version` and `orderflow --version`
// print the same line: version, commit and build date of the stamp.
func TestVersionCommandAndFlag(t *testing.T) {
	stamp(t, "v1.2.3", "0123abcd", "2026-01-02T03:04:05Z")
	var outs []string
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := cli(context.Background(), nil, args...)
		if r.err != nil {
			t.Fatalf("%v: %v", args, r)
		}
		outs = append(outs, r.stdout)
	}
	const want = "orderflow v1.2.3 (commit 0123abcd, built 2026-01-02T03:04:05Z, go1."
	if !strings.HasPrefix(outs[0], want) {
		t.Errorf("orderflow version: %q, want it to begin %q", outs[0], want)
	}
	if outs[1] != outs[0] {
		t.Errorf("orderflow --version: %q, want what orderflow version prints, %q", outs[1], outs[0])
	}
}

// TestBuildInfoFallsBack: without a stamp, the version comes from the
// module version and the commit and date from the VCS information that the
// Go tool records; without those, "dev" and "unknown".
func TestBuildInfoFallsBack(t *testing.T) {
	read := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "v0.9.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "feedface"}, {Key: "vcs.time", Value: "2026-02-03T04:05:06Z"}, {Key: "vcs.modified", Value: "true"},
		}}, true
	}
	if got, want := resolveBuildInfo(buildInfo{}, read), (buildInfo{"v0.9.0", "feedface-dirty", "2026-02-03T04:05:06Z"}); got != want {
		t.Errorf("from build info: %+v, want %+v", got, want)
	}
	if got, want := resolveBuildInfo(buildInfo{Version: "v1.0.0", Commit: "abc"}, read), (buildInfo{"v1.0.0", "abc", "2026-02-03T04:05:06Z"}); got != want {
		t.Errorf("stamp with build info: %+v, want %+v", got, want)
	}
	devel := func() (*debug.BuildInfo, bool) { return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true }
	if got, want := resolveBuildInfo(buildInfo{}, devel), (buildInfo{"dev", "unknown", "unknown"}); got != want {
		t.Errorf("nothing known: %+v, want %+v", got, want)
	}
}

// TestBuildInfoMetric: orderflow_build_info is 1 with the build as labels.
func TestBuildInfoMetric(t *testing.T) {
	b := buildInfo{"v1.2.3", "0123abcd", "2026-01-02T03:04:05Z"}
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "orderflow_build_info" {
		t.Fatalf("metrics %v, want orderflow_build_info", mfs)
	}
	labels := map[string]string{}
	for _, l := range mfs[0].GetMetric()[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	if labels["version"] != b.Version || labels["commit"] != b.Commit || labels["date"] != b.Date || !strings.HasPrefix(labels["goversion"], "go1.") {
		t.Errorf("labels %v", labels)
	}
	if v := mfs[0].GetMetric()[0].GetGauge().GetValue(); v != 1 {
		t.Errorf("value %v, want 1", v)
	}
}

// TestMakeBuildStampsTheVersion: `make build` stamps the binary with the
// version, the commit and the build date.
func TestMakeBuildStampsTheVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary with make")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	bin := filepath.Join(t.TempDir(), "orderflow")
	mk := exec.Command("make", "-s", "build", "BIN="+bin, "VERSION=v9.8.7-test", "COMMIT=c0ffee", "DATE=2026-03-04T05:06:07Z")
	mk.Dir = filepath.Join("..", "..")
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	const want = "orderflow v9.8.7-test (commit c0ffee, built 2026-03-04T05:06:07Z, "
	if !strings.HasPrefix(string(out), want) {
		t.Errorf("--version of make's build: %q, want it to begin %q", out, want)
	}
	// Without the variables, make takes them from git and the clock.
	mk = exec.Command("make", "-s", "-n", "build", "BIN="+bin)
	mk.Dir = filepath.Join("..", "..")
	dry, err := mk.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, dry)
	}
	for _, re := range []string{`-X main\.version=\S+`, `-X main\.commit=\S+`, `-X main\.date=\d{4}-\d\d-\d\dT`} {
		if !regexp.MustCompile(re).Match(dry) {
			t.Errorf("make build's command lacks %s:\n%s", re, dry)
		}
	}
}

// TestDockerfileStampsTheVersion: the image's build passes its build
// arguments to the linker.
func TestDockerfileStampsTheVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ARG VERSION", "ARG COMMIT", "ARG DATE", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-X main.date=${DATE}"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
