package processor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/orderflow/orderflow/avro"
)

// SchemaRegistry says how to reach and use the Confluent schema registry of
// Config.SchemaRegistryURL. Its zero value: no credentials, the system's CA
// roots, the schemas registered at start, DefaultRegistryTimeout per
// request. Formatting it never prints the password.
type SchemaRegistry struct {
	// Username and Password are HTTP basic auth credentials (Confluent's
	// basic.auth.user.info; an API key and secret on Confluent Cloud).
	// Both or neither.
	Username, Password string
	// CAFile is a PEM file of the CA certificates that sign the registry's
	// certificate (an https URL). Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for a
	// registry that authenticates clients by TLS. Both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any registry certificate. For tests only.
	InsecureSkipVerify bool
	// LookupOnly registers nothing: the schemas must have been registered
	// under their subjects beforehand (by someone whose ACLs allow it), and
	// are looked up with GET requests only. Default false: the processor
	// registers them, as Confluent's serializers do by default.
	LookupOnly bool
	// Timeout bounds each request to the registry. Default
	// avro.DefaultRegistryTimeout (10 s).
	Timeout time.Duration
}

// Format prints the settings with the password redacted, whatever the
// verb.
func (r SchemaRegistry) Format(f fmt.State, _ rune) {
	pw := ""
	if r.Password != "" {
		pw = redacted
	}
	fmt.Fprintf(f, "{user=%s password=%s ca=%s cert=%s key=%s insecure-skip-verify=%t lookup-only=%t timeout=%v}",
		r.Username, pw, r.CAFile, r.CertFile, r.KeyFile, r.InsecureSkipVerify, r.LookupOnly, r.Timeout)
}

// set reports whether r asks for anything that only makes sense with a
// registry URL (the timeout, which has a default, aside).
func (r SchemaRegistry) set() bool {
	r.Timeout = 0
	return r != SchemaRegistry{}
}

// registryURLs parses a registry URL list ("http://a:8081,http://b:8081",
// as Confluent's schema.registry.url takes it) and checks it against r: a
// malformed URL, credentials in a URL, or TLS files with an http URL are
// errors, named by field.
func (r SchemaRegistry) registryURLs(list string) ([]string, error) {
	var urls []string
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	https := false
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		u, err := url.Parse(s)
		switch {
		case err != nil:
			add("Config.SchemaRegistryURL %q: %v", s, errors.Unwrap(err))
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
			add("Config.SchemaRegistryURL %q: want http://HOST:PORT or https://HOST:PORT", s)
		case u.User != nil:
			add("Config.SchemaRegistryURL %q has credentials in it: give them as Config.SchemaRegistry.Username and Config.SchemaRegistry.Password", u.Redacted())
		case u.RawQuery != "" || u.Fragment != "":
			add("Config.SchemaRegistryURL %q: a registry URL has no query or fragment", s)
		default:
			https = https || u.Scheme == "https"
			urls = append(urls, strings.TrimSuffix(s, "/"))
		}
	}
	if len(urls) == 0 && len(problems) == 0 {
		add("Config.SchemaRegistryURL %q names no registry", list)
	}
	if (r.Username == "") != (r.Password == "") {
		add("Config.SchemaRegistry.Username and Config.SchemaRegistry.Password: give both, or neither")
	}
	if r.tlsSet() && !https && len(urls) > 0 {
		add("TLS settings of the schema registry (Config.SchemaRegistry.CAFile, Config.SchemaRegistry.CertFile, Config.SchemaRegistry.KeyFile, Config.SchemaRegistry.InsecureSkipVerify) are set but Config.SchemaRegistryURL is not https")
	}
	if r.Timeout < 0 {
		add("Config.SchemaRegistry.Timeout %v is negative", r.Timeout)
	}
	if len(problems) > 0 {
		return nil, problemList(problems)
	}
	return urls, nil
}

func (r SchemaRegistry) tlsSet() bool {
	return r.CAFile != "" || r.CertFile != "" || r.KeyFile != "" || r.InsecureSkipVerify
}

// client returns a registry client for the URL list.
func (r SchemaRegistry) client(list string) (*sr.Client, error) {
	urls, err := r.registryURLs(list)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	timeout := r.Timeout
	setDefault(&timeout, avro.DefaultRegistryTimeout)
	opts := []sr.ClientOpt{sr.URLs(urls...), sr.HTTPClient(&http.Client{Timeout: timeout})}
	if r.Username != "" {
		opts = append(opts, sr.BasicAuth(r.Username, r.Password))
	}
	var tc *tls.Config
	if r.tlsSet() {
		if tc, err = tlsConfig("Config.SchemaRegistry", r.CAFile, r.CertFile, r.KeyFile, r.InsecureSkipVerify); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		opts = append(opts, sr.DialTLSConfig(tc))
	}
	return sr.NewClient(opts...)
}

// NewRegistryCodec returns a codec of the Confluent wire format with the
// schema registry at urls (a comma-separated list), reached and used as reg
// says: it registers (or, with reg.LookupOnly, looks up) the schemas of the
// records topics names. opts are further codec options (writer schemas). A
// registry setting to fix, and a refusal that one would cure (credentials
// refused, registration forbidden, a schema not registered), give an error
// matching ErrConfig; others (the registry down) do not.
func NewRegistryCodec(ctx context.Context, urls string, reg SchemaRegistry, topics avro.Topics, opts ...avro.Option) (*avro.Codec, error) {
	cl, err := reg.client(urls)
	if err != nil {
		return nil, err
	}
	if reg.Timeout > 0 {
		opts = append(opts, avro.WithRegistryTimeout(reg.Timeout))
	}
	if reg.LookupOnly {
		opts = append(opts, avro.WithRegistryLookupOnly())
	}
	c, err := avro.NewConfluentCodec(ctx, cl, topics, opts...)
	if err != nil {
		return nil, explainRegistryError(urls, reg, err)
	}
	return c, nil
}

// explainRegistryError adds to an error of setting up a registry codec what
// to do about it, and makes it match ErrConfig when a setting would cure it.
func explainRegistryError(urls string, reg SchemaRegistry, err error) error {
	var re *sr.ResponseError
	var cv *tls.CertificateVerificationError
	switch {
	case errors.Is(err, avro.ErrNotRegistered):
		return fmt.Errorf("%w: schema registry %s: %w (Config.SchemaRegistry.LookupOnly registers nothing: have the schema registered, or let orderflow register it)", ErrConfig, urls, err)
	case errors.As(err, &re) && re.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: schema registry %s refused the credentials (Config.SchemaRegistry.Username, Config.SchemaRegistry.Password): %w", ErrConfig, urls, err)
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden && !reg.LookupOnly && re.Method == http.MethodPost:
		return fmt.Errorf("%w: schema registry %s refused to register a schema (with the credentials of Config.SchemaRegistry.Username): "+
			"if the schemas are registered by someone else, set Config.SchemaRegistry.LookupOnly: %w", ErrConfig, urls, err)
	case errors.As(err, &re) && re.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: schema registry %s refused access (with the credentials of Config.SchemaRegistry.Username): %w", ErrConfig, urls, err)
	case errors.As(err, &cv):
		return fmt.Errorf("%w: schema registry %s: its certificate does not verify (Config.SchemaRegistry.CAFile): %w", ErrConfig, urls, err)
	}
	return fmt.Errorf("schema registry %s: %w", urls, err)
}
