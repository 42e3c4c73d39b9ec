package main

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/orderflow/orderflow/internal/demo"
	"github.com/orderflow/orderflow/processor"
)

// TestLibraryErrorsNameFlags: a configuration error of the library, which
// names fields, reaches the CLI user with the flags that set them.
func TestLibraryErrorsNameFlags(t *testing.T) {
	clearEnv(t)
	check := func(want string, args ...string) {
		t.Helper()
		var r cliResult
		if args[0] == "demo" {
			r = cli(context.Background(), nil, args...)
		} else {
			r = runBriefly(t, args...)
		}
		switch {
		case r.code != 2 || r.err == nil:
			t.Errorf("%v: code %d, err %v; want a configuration error (2)", args, r.code, r.err)
		case !strings.Contains(r.err.Error(), want):
			t.Errorf("%v: error %q lacks %q", args, r.err, want)
		case fieldRef.MatchString(r.err.Error()):
			t.Errorf("%v: error %q names the field %s, not its flag", args, r.err, fieldRef.FindString(r.err.Error()))
		}
	}
	// Connection.Opts
	check("SASL PLAIN needs a password: ORDERFLOW_SASL_PASSWORD (or --sasl-password) is empty",
		"--sasl-mechanism", "PLAIN", "--sasl-user", "u")
	check("--tls-key is set without --tls-cert", "--tls-key", "key.pem")
	// Config's validation in processor.New
	check(`--events-topic and --status-topic are both named "`+processor.DefaultEventsTopic+`"`,
		"--status-topic", processor.DefaultEventsTopic)
	// demo.Options' validation in demo.Run
	check("--chaos needs at least 2 instances", "demo", "--chaos", "--instances", "1")
}

// TestFieldFlags: every field of the map is a field of its library type and
// every flag a flag of the command that sets it (demo for demo.Options,
// repartition for processor.RepartitionOptions, run for the others).
func TestFieldFlags(t *testing.T) {
	types := map[string]reflect.Type{
		"Config":      reflect.TypeFor[processor.Config](),
		"Connection":  reflect.TypeFor[processor.Connection](),
		"PeersConfig": reflect.TypeFor[processor.PeersConfig](),
		"Options":     reflect.TypeFor[demo.Options](),

		"RepartitionOptions": reflect.TypeFor[processor.RepartitionOptions](),
	}
	for field, flag := range fieldFlags {
		flags := newRunCmd().Flags()
		if strings.HasPrefix(field, "Options.") {
			flags = newDemoCmd().Flags()
		}
		if strings.HasPrefix(field, "RepartitionOptions.") {
			flags = newRepartitionCmd().Flags()
		}
		path := strings.Split(field, ".")
		typ, ok := types[path[0]]
		for _, name := range path[1:] {
			if !ok {
				break
			}
			var f reflect.StructField
			f, ok = typ.FieldByName(name)
			typ = f.Type
		}
		if !ok || !fieldRef.MatchString(field) {
			t.Errorf("%s is not a field of the library's configuration", field)
		}
		name := flag
		if i := strings.Index(flag, "--"); i >= 0 {
			name = strings.TrimRight(flag[i+2:], ")")
		}
		if flags.Lookup(name) == nil {
			t.Errorf("%s maps to %q, which is not a flag of its command", field, flag)
		}
	}
	if got := withFlagNames("Config.Topics.Events and Connection.SASLUser, Config.Logger"); got != "--events-topic and --sasl-user, Config.Logger" {
		t.Errorf("withFlagNames = %q", got)
	}
}
