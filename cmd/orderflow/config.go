package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// Configuration comes from four places, in this order of precedence:
//
//  1. command-line flags;
//  2. the environment: ORDERFLOW_<FLAG>, the flag name upper-cased with '-'
//     replaced by '_' (--commit-interval: ORDERFLOW_COMMIT_INTERVAL); an
//     empty variable counts as unset;
//  3. the YAML file named by --config (or ORDERFLOW_CONFIG), whose keys are
//     the flag names (commit-interval: 250ms; a list for a list flag:
//     brokers: [a:9092, b:9092]);
//  4. the flags' defaults.
//
// It is implemented once, over a command's pflag.FlagSet: every flag that
// was not given on the command line is set from the environment, else from
// the file. So every flag of a command is configurable all three ways, and a
// new flag is too, without code here.

const (
	envPrefix      = "ORDERFLOW_"
	configFlag     = "config"
	secretAnnot    = "orderflow_secret" // flag annotation: never print the value
	printConfigArg = "print-config"
)

// notConfigurable are flags that only the command line sets.
var notConfigurable = map[string]bool{"help": true, configFlag: true, printConfigArg: true}

// envName is the environment variable of a flag.
func envName(flag string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// markSecret makes a flag's value unprintable (errors, --print-config).
func markSecret(fs *pflag.FlagSet, name string) {
	if err := fs.SetAnnotation(name, secretAnnot, []string{"true"}); err != nil {
		panic(err) // a programming error: the flag does not exist
	}
}

func isSecret(f *pflag.Flag) bool { return len(f.Annotations[secretAnnot]) > 0 }

// configError is a configuration problem: exit code 2.
func configError(err error) error { return &exitError{code: 2, err: err} }

// source says where a flag's value came from.
type source string

const (
	fromDefault source = "default"
	fromFlag    source = "flag"
)

// applyConfig fills every flag of fs that was not given on the command line
// from the environment (lookupEnv, normally os.LookupEnv) or, when fs has a
// --config flag and it (or ORDERFLOW_CONFIG) names a file, from that YAML
// file. It returns where each flag's value came from. Errors name the
// variable or the file and key, and say what is wrong.
func applyConfig(fs *pflag.FlagSet, lookupEnv func(string) (string, bool)) (map[string]source, error) {
	var file string
	var values map[string]*yaml.Node
	if f := fs.Lookup(configFlag); f != nil {
		file = f.Value.String()
		if !f.Changed {
			if v, ok := lookupEnv(envName(configFlag)); ok && v != "" {
				file = v
			}
		}
		if file != "" {
			var err error
			if values, err = readConfigFile(fs, file); err != nil {
				return nil, err
			}
		}
	}

	sources := map[string]source{}
	var problems []string
	fs.VisitAll(func(f *pflag.Flag) {
		switch {
		case notConfigurable[f.Name]:
			return
		case f.Changed:
			sources[f.Name] = fromFlag
			return
		}
		show := func(v string) string {
			if isSecret(f) {
				return "(redacted)"
			}
			return fmt.Sprintf("%q", v)
		}
		set := func(v string) error {
			err := fs.Set(f.Name, v)
			if err != nil && isSecret(f) {
				// pflag's errors quote the value.
				return fmt.Errorf("invalid %s value for --%s", f.Value.Type(), f.Name)
			}
			return err
		}
		if v, ok := lookupEnv(envName(f.Name)); ok && v != "" {
			if err := set(v); err != nil {
				problems = append(problems, fmt.Sprintf("environment %s=%s: %v (it sets --%s)", envName(f.Name), show(v), err, f.Name))
				return
			}
			sources[f.Name] = source("env " + envName(f.Name))
			return
		}
		n, ok := values[f.Name]
		if !ok {
			sources[f.Name] = fromDefault
			return
		}
		where := fmt.Sprintf("config file %s:%d: %s", file, n.Line, f.Name)
		var err error
		switch n.Kind {
		case yaml.ScalarNode:
			err = set(n.Value)
		case yaml.SequenceNode:
			sv, isSlice := f.Value.(pflag.SliceValue)
			if !isSlice {
				problems = append(problems, fmt.Sprintf("%s: is a list, but --%s takes one value", where, f.Name))
				return
			}
			items := make([]string, 0, len(n.Content))
			for _, it := range n.Content {
				if it.Kind != yaml.ScalarNode {
					problems = append(problems, fmt.Sprintf("%s: list items must be plain values", where))
					return
				}
				items = append(items, it.Value)
			}
			if err = sv.Replace(items); err == nil {
				f.Changed = true
			}
		default:
			problems = append(problems, fmt.Sprintf("%s: must be a value or a list, not a mapping", where))
			return
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %s: %v", where, show(n.Value), err))
			return
		}
		sources[f.Name] = source("file " + file)
	})
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return sources, nil
}

// readConfigFile reads a YAML mapping of flag names to values. Null values
// count as absent. Unknown keys are errors.
func readConfigFile(fs *pflag.FlagSet, file string) (map[string]*yaml.Node, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %w", file, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty, or only comments
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s: want a mapping of flag names to values (commit-interval: 250ms)", file)
	}
	values := map[string]*yaml.Node{}
	var problems []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		name := k.Value
		f := fs.Lookup(name)
		switch {
		case f == nil || notConfigurable[name]:
			msg := fmt.Sprintf("config file %s:%d: unknown key %q", file, k.Line, name)
			if s := closest(fs, name); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (the keys are the command's flag names, without --)"
			}
			problems = append(problems, msg)
		case values[name] != nil:
			problems = append(problems, fmt.Sprintf("config file %s:%d: %q is set twice", file, k.Line, name))
		case v.Tag == "!!null":
		default:
			values[name] = v
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return values, nil
}

// closest returns the configurable flag name nearest to name, if it is near.
func closest(fs *pflag.FlagSet, name string) string {
	best, bestD := "", 4
	fs.VisitAll(func(f *pflag.Flag) {
		if notConfigurable[f.Name] {
			return
		}
		if d := editDistance(name, f.Name); d < bestD || (d == bestD && f.Name < best) {
			best, bestD = f.Name, d
		}
	})
	if bestD > len(name)/3+1 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// printConfig renders the effective configuration as a YAML config file
// (loadable with --config), each line commented with its source. Secret
// values are left out.
func printConfig(fs *pflag.FlagSet, sources map[string]source) ([]byte, error) {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !notConfigurable[f.Name] {
			names = append(names, f.Name)
		}
	})
	sort.Strings(names)
	var b bytes.Buffer
	for _, name := range names {
		f := fs.Lookup(name)
		src := sources[name]
		if src == "" {
			src = fromDefault
		}
		if isSecret(f) {
			state := "not set"
			if f.Value.String() != "" {
				state = "set, redacted"
			}
			fmt.Fprintf(&b, "# %s: (%s) # %s\n", name, state, src)
			continue
		}
		var v any = f.Value.String()
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			v = sv.GetSlice()
		}
		node := &yaml.Node{}
		if err := node.Encode(map[string]any{name: v}); err != nil {
			return nil, err
		}
		node.Content[0].Style = 0
		node.Content[1].Style = yaml.FlowStyle
		node.Content[0].LineComment = string(src)
		out, err := yaml.Marshal(node)
		if err != nil {
			return nil, err
		}
		b.Write(out)
	}
	return b.Bytes(), nil
}

// durationValue is a time.Duration flag that also takes days ("7d",
// "1d12h"), for retention periods.
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := parseDays(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) Type() string { return "duration" }

func (d *durationValue) String() string {
	v := time.Duration(*d)
	if v != 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return v.String()
}

// parseDays is time.ParseDuration plus a leading whole number of days.
func parseDays(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	var n int64
	if _, err := fmt.Sscanf(days, "%d", &n); err != nil || fmt.Sprint(n) != days || n < 0 {
		return 0, fmt.Errorf("invalid duration %q (use e.g. 7d, 36h or 90m)", s)
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || r < 0 {
			return 0, fmt.Errorf("invalid duration %q (use e.g. 7d, 1d12h or 36h)", s)
		}
		d += r
	}
	return d, nil
}
