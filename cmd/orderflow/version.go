package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/orderflow/orderflow/processor"
)

// The build's stamp, set by `make build` and the Dockerfile with
// -ldflags "-X main.version=... -X main.commit=... -X main.date=...".
// Empty when not stamped: buildVersion falls back to what the Go tool
// records in the binary.
var version, commit, date string

// buildInfo is the version, commit and build date of the binary.
type buildInfo struct{ Version, Commit, Date string }

// buildVersion returns the stamped build info, each part not stamped taken
// from the binary's build information instead (`go install
// module@version` records the module version; a build in a git checkout the
// commit and its time), else "dev" or "unknown".
func buildVersion() buildInfo {
	return resolveBuildInfo(buildInfo{version, commit, date}, debug.ReadBuildInfo)
}

func resolveBuildInfo(stamp buildInfo, read func() (*debug.BuildInfo, bool)) buildInfo {
	b := stamp
	if bi, ok := read(); ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && stamp.Commit == "" && b.Commit != "" {
			b.Commit += "-dirty"
		}
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

// String is the line `orderflow version` and `orderflow --version` print.
func (b buildInfo) String() string {
	return fmt.Sprintf("orderflow %s (commit %s, built %s, %s %s/%s)", b.Version, b.Commit, b.Date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// collector is the orderflow_build_info metric: 1, with the build as
// labels, so dashboards can show which version each instance runs.
func (b buildInfo) collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: processor.MetricsNamespace, Name: "build_info",
		Help:        "Always 1; the labels name the running binary's version, commit, build date and Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "date": b.Date, "goversion": runtime.Version()},
	}, func() float64 { return 1 })
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the orderflow version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), buildVersion())
			return err
		},
	}
}
