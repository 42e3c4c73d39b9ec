package processor

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms a Connection supports.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// Connection says how to reach and authenticate to the brokers: TLS and
// SASL. Its zero value is a plaintext, unauthenticated connection. Opts turns
// it into franz-go options for Config.KafkaOpts (and for every other client
// the CLI makes, so `produce` and `tail` connect the same way).
//
// The password is never printed: String, GoString and LogValue redact it.
type Connection struct {
	// TLS turns on TLS. Setting CAFile, CertFile, KeyFile or
	// InsecureSkipVerify turns it on too. Default off.
	TLS bool
	// CAFile is a PEM file of the CA certificates that sign the brokers'
	// certificates. Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by TLS (mTLS). Both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any broker certificate. For tests only: it
	// makes TLS open to man-in-the-middle attacks. Default false.
	InsecureSkipVerify bool
	// SASLMechanism is "" (no SASL, the default), PLAIN, SCRAM-SHA-256 or
	// SCRAM-SHA-512 (case-insensitive).
	SASLMechanism string
	// SASLUser and SASLPassword are the SASL credentials; both are required
	// with a mechanism.
	SASLUser, SASLPassword string
}

// ErrConnection is matched by every error of Connection.Opts. It also
// matches ErrConfig.
var ErrConnection = fmt.Errorf("%w: kafka connection", ErrConfig)

// ExplainConnectionError says what is likely wrong when an error of talking
// to the brokers shows that the client's security settings do not match
// the listener's, and makes it match ErrConnection (a configuration error).
// Other errors, and nil, it returns as they are.
//
// ILLEGAL_SASL_STATE is a listener without SASL (PLAINTEXT or SSL)
// answering the client's SASL handshake. (TLS against a listener without
// it already gets a clear error from the client: the broker closed the
// connection immediately after a dial.)
func ExplainConnectionError(err error) error {
	if errors.Is(err, kerr.IllegalSaslState) {
		return fmt.Errorf("%w: the broker refused SASL authentication: the listener at Config.Brokers likely does not speak SASL "+
			"(a PLAINTEXT or SSL listener; security protocol mismatch): check the port, and whether the cluster wants Connection.SASLMechanism at all: %w",
			ErrConnection, err)
	}
	return err
}

// TLSEnabled reports whether the connection uses TLS.
func (c Connection) TLSEnabled() bool {
	return c.TLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" || c.InsecureSkipVerify
}

// Mechanism returns the SASL mechanism in its canonical (upper-case) form,
// "" for none.
func (c Connection) Mechanism() string {
	return strings.ToUpper(strings.TrimSpace(c.SASLMechanism))
}

// Opts checks c and returns the franz-go options that implement it (none for
// the zero Connection). Every error matches ErrConnection and names the
// fields to fix (Connection.SASLUser, ...).
func (c Connection) Opts() ([]kgo.Opt, error) {
	var problems []error
	add := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	var opts []kgo.Opt

	if c.TLSEnabled() {
		cfg, err := c.tlsConfig()
		if err != nil {
			problems = append(problems, err)
		} else {
			opts = append(opts, kgo.DialTLSConfig(cfg))
		}
	}

	mech := c.Mechanism()
	switch mech {
	case "":
		if c.SASLUser != "" || c.SASLPassword != "" {
			add("Connection.SASLUser or Connection.SASLPassword is set but Connection.SASLMechanism is empty: use %s, %s or %s", SASLPlain, SASLScramSHA256, SASLScramSHA512)
		}
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
		if c.SASLUser == "" {
			add("SASL %s needs a user: Connection.SASLUser is empty", mech)
		}
		if c.SASLPassword == "" {
			add("SASL %s needs a password: Connection.SASLPassword is empty", mech)
		}
		if c.SASLUser != "" && c.SASLPassword != "" {
			switch mech {
			case SASLPlain:
				opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
			case SASLScramSHA256:
				opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
			case SASLScramSHA512:
				opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
			}
		}
	default:
		add("unknown SASL mechanism %q: Connection.SASLMechanism must be %s, %s or %s", c.SASLMechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}

	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConnection, problemList(problems))
	}
	return opts, nil
}

// tlsConfig builds the TLS configuration. franz-go sets ServerName from each
// broker's host when it dials.
func (c Connection) tlsConfig() (*tls.Config, error) {
	return tlsConfig("Connection", c.CAFile, c.CertFile, c.KeyFile, c.InsecureSkipVerify)
}

// tlsConfig builds a TLS client configuration from PEM files; errors name
// the fields that set them, as those of the struct named field.
func tlsConfig(field, caFile, certFile, keyFile string, insecure bool) (*tls.Config, error) {
	var problems []error
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: insecure, //nolint:gosec // the user asked for it (InsecureSkipVerify)
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			problems = append(problems, fmt.Errorf("cannot read the CA file (%s.CAFile): %w", field, err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				problems = append(problems, fmt.Errorf("the CA file %s (%s.CAFile) holds no PEM certificate", caFile, field))
			}
			cfg.RootCAs = pool
		}
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			problems = append(problems, fmt.Errorf("cannot load the client certificate (%[1]s.CertFile %[2]s, %[1]s.KeyFile %[3]s): %[4]w", field, certFile, keyFile, err))
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	case certFile != "":
		problems = append(problems, fmt.Errorf("%[1]s.CertFile is set without %[1]s.KeyFile: give both, or neither", field))
	case keyFile != "":
		problems = append(problems, fmt.Errorf("%[1]s.KeyFile is set without %[1]s.CertFile: give both, or neither", field))
	}
	if len(problems) > 0 {
		return nil, problemList(problems)
	}
	return cfg, nil
}

// problemList is several problems as one error on one line ("; "), like
// Config's validation errors; errors.Is and As see each.
type problemList []error

func (l problemList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "; ")
}

func (l problemList) Unwrap() []error { return l }

const redacted = "REDACTED"

// String describes the connection with the password redacted.
func (c Connection) String() string {
	var b strings.Builder
	if c.TLSEnabled() {
		b.WriteString("tls")
		if c.CAFile != "" {
			fmt.Fprintf(&b, " ca=%s", c.CAFile)
		}
		if c.CertFile != "" {
			fmt.Fprintf(&b, " cert=%s key=%s", c.CertFile, c.KeyFile)
		}
		if c.InsecureSkipVerify {
			b.WriteString(" insecure-skip-verify")
		}
	} else {
		b.WriteString("plaintext")
	}
	if m := c.Mechanism(); m != "" || c.SASLUser != "" || c.SASLPassword != "" {
		fmt.Fprintf(&b, " sasl=%s user=%s password=%s", m, c.SASLUser, c.redactedPassword())
	}
	return b.String()
}

// GoString is String, so %#v cannot print the password either.
func (c Connection) GoString() string { return "processor.Connection{" + c.String() + "}" }

// Format prints String (GoString for %#v) whatever the verb, so no verb
// prints the password.
func (c Connection) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

// LogValue renders the connection for log/slog with the password redacted.
func (c Connection) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Bool("tls", c.TLSEnabled())}
	if c.CAFile != "" {
		attrs = append(attrs, slog.String("tls_ca", c.CAFile))
	}
	if c.CertFile != "" {
		attrs = append(attrs, slog.String("tls_cert", c.CertFile), slog.String("tls_key", c.KeyFile))
	}
	if c.InsecureSkipVerify {
		attrs = append(attrs, slog.Bool("tls_insecure_skip_verify", true))
	}
	if m := c.Mechanism(); m != "" || c.SASLUser != "" || c.SASLPassword != "" {
		attrs = append(attrs,
			slog.String("sasl_mechanism", m),
			slog.String("sasl_user", c.SASLUser),
			slog.String("sasl_password", c.redactedPassword()))
	}
	return slog.GroupValue(attrs...)
}

func (c Connection) redactedPassword() string {
	if c.SASLPassword == "" {
		return ""
	}
	return redacted
}
