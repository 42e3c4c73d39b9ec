package processor_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/processor"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ping connects with the connection's options and asks for metadata.
func ping(t *testing.T, c *kafkatest.Cluster, conn processor.Connection) error {
	t.Helper()
	opts, err := conn.Opts()
	if err != nil {
		t.Fatalf("Opts: %v", err)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.RequestRetries(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.Ping(ctx)
}

func TestConnectionZeroIsPlaintext(t *testing.T) {
	opts, err := processor.Connection{}.Opts()
	if err != nil || len(opts) != 0 {
		t.Fatalf("zero Connection: %d opts, err %v", len(opts), err)
	}
	if err := ping(t, kafkatest.Fake(t), processor.Connection{}); err != nil {
		t.Fatalf("plaintext ping: %v", err)
	}
}

func TestConnectionTLS(t *testing.T) {
	pki := kafkatest.NewTestCA(t)
	other := kafkatest.NewTestCA(t) // a CA that did not sign the broker's certificate
	c := kafkatest.Fake(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.ServerCert(t)}, MinVersion: tls.VersionTLS12}))

	if err := ping(t, c, processor.Connection{TLS: true, CAFile: pki.CAFile}); err != nil {
		t.Errorf("TLS with the right CA: %v", err)
	}
	// A CA file alone turns TLS on.
	if err := ping(t, c, processor.Connection{CAFile: pki.CAFile}); err != nil {
		t.Errorf("CA file without --tls: %v", err)
	}
	if err := ping(t, c, processor.Connection{TLS: true, CAFile: other.CAFile}); err == nil {
		t.Error("TLS with a CA that did not sign the broker certificate connected")
	}
	if err := ping(t, c, processor.Connection{TLS: true}); err == nil {
		t.Error("TLS with the system roots accepted a test CA's certificate")
	}
	if err := ping(t, c, processor.Connection{TLS: true, InsecureSkipVerify: true}); err != nil {
		t.Errorf("TLS with insecure-skip-verify: %v", err)
	}
	if err := ping(t, c, processor.Connection{}); err == nil {
		t.Error("plaintext client talked to a TLS broker")
	}
}

func TestConnectionMutualTLS(t *testing.T) {
	pki := kafkatest.NewTestCA(t)
	c := kafkatest.Fake(t, kfake.TLS(&tls.Config{
		Certificates: []tls.Certificate{pki.ServerCert(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pki.Pool(t),
		MinVersion:   tls.VersionTLS12,
	}))
	if err := ping(t, c, processor.Connection{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}); err != nil {
		t.Errorf("mTLS with a client certificate: %v", err)
	}
	if err := ping(t, c, processor.Connection{CAFile: pki.CAFile}); err == nil {
		t.Error("mTLS broker accepted a client without a certificate")
	}
}

func TestConnectionSASL(t *testing.T) {
	pki := kafkatest.NewTestCA(t)
	for _, mech := range []string{processor.SASLPlain, processor.SASLScramSHA256, processor.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c := kafkatest.Fake(t,
				kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.ServerCert(t)}, MinVersion: tls.VersionTLS12}),
				kfake.EnableSASL(),
				kfake.Superuser(mech, "alice", "s3cret-pw"))
			conn := processor.Connection{CAFile: pki.CAFile, SASLMechanism: strings.ToLower(mech), SASLUser: "alice", SASLPassword: "s3cret-pw"}
			if err := ping(t, c, conn); err != nil {
				t.Errorf("SASL_SSL %s with the right password: %v", mech, err)
			}
			conn.SASLPassword = "wrong"
			if err := ping(t, c, conn); err == nil {
				t.Errorf("SASL %s with a wrong password connected", mech)
			}
			if err := ping(t, c, processor.Connection{CAFile: pki.CAFile}); err == nil {
				t.Errorf("a client without SASL got metadata from a SASL broker")
			}
		})
	}
	// The mechanism must match the broker's: a SCRAM-SHA-256 user cannot log
	// in with SCRAM-SHA-512.
	c := kafkatest.Fake(t, kfake.EnableSASL(), kfake.Superuser(processor.SASLScramSHA256, "bob", "pw"))
	if err := ping(t, c, processor.Connection{SASLMechanism: processor.SASLScramSHA512, SASLUser: "bob", SASLPassword: "pw"}); err == nil {
		t.Error("SCRAM-SHA-512 login to a SCRAM-SHA-256 user succeeded")
	}
	if err := ping(t, c, processor.Connection{SASLMechanism: processor.SASLScramSHA256, SASLUser: "bob", SASLPassword: "pw"}); err != nil {
		t.Errorf("SASL_PLAINTEXT SCRAM-SHA-256: %v", err)
	}
}

func TestConnectionErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing-ca.pem")
	for _, tc := range []struct {
		name string
		conn processor.Connection
		want []string // substrings of the error
	}{
		{"unknown mechanism", processor.Connection{SASLMechanism: "GSSAPI", SASLUser: "u", SASLPassword: "p"},
			[]string{`unknown SASL mechanism "GSSAPI"`, "Connection.SASLMechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"}},
		{"no user", processor.Connection{SASLMechanism: "PLAIN", SASLPassword: "p"}, []string{"needs a user: Connection.SASLUser is empty"}},
		{"no password", processor.Connection{SASLMechanism: "SCRAM-SHA-512", SASLUser: "u"}, []string{"needs a password: Connection.SASLPassword is empty"}},
		{"user without mechanism", processor.Connection{SASLUser: "u", SASLPassword: "p"}, []string{"Connection.SASLMechanism is empty"}},
		{"missing CA file", processor.Connection{TLS: true, CAFile: missing}, []string{"cannot read the CA file (Connection.CAFile)", missing}},
		{"CA file not PEM", processor.Connection{CAFile: notPEM}, []string{notPEM, "holds no PEM certificate"}},
		{"cert without key", processor.Connection{TLS: true, CertFile: notPEM}, []string{"Connection.CertFile is set without Connection.KeyFile"}},
		{"key without cert", processor.Connection{TLS: true, KeyFile: notPEM}, []string{"Connection.KeyFile is set without Connection.CertFile"}},
		{"bad key pair", processor.Connection{TLS: true, CertFile: notPEM, KeyFile: notPEM}, []string{"cannot load the client certificate", "Connection.CertFile " + notPEM}},
		{"two problems", processor.Connection{CAFile: missing, SASLMechanism: "PLAIN"}, []string{"Connection.CAFile", "Connection.SASLUser", "Connection.SASLPassword"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := tc.conn.Opts()
			if err == nil {
				t.Fatalf("no error (%d opts)", len(opts))
			}
			if tc.name == "missing CA file" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("error does not match os.ErrNotExist: %v", err)
			}
			if !errors.Is(err, processor.ErrConnection) || !errors.Is(err, processor.ErrConfig) {
				t.Errorf("error does not match ErrConnection and ErrConfig: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
		})
	}
}

func TestConnectionRedactsPassword(t *testing.T) {
	const pw = "hunter2-very-secret"
	conn := processor.Connection{TLS: true, SASLMechanism: "scram-sha-256", SASLUser: "alice", SASLPassword: pw}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		outs = append(outs, fmt.Sprintf(verb, conn), fmt.Sprintf(verb, &conn))
	}
	outs = append(outs, conn.String())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("connecting", "conn", conn)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("connecting", "conn", conn)
	outs = append(outs, buf.String())
	for _, o := range outs {
		if strings.Contains(o, pw) {
			t.Errorf("password printed: %s", o)
		}
	}
	if s := conn.String(); !strings.Contains(s, "user=alice") || !strings.Contains(s, "password=REDACTED") || !strings.Contains(s, "sasl=SCRAM-SHA-256") {
		t.Errorf("String lacks the user, mechanism or redaction marker: %s", s)
	}
	if !strings.Contains(buf.String(), `"sasl_password":"REDACTED"`) || !strings.Contains(buf.String(), `"sasl_user":"alice"`) {
		t.Errorf("slog output lacks the redacted group: %s", buf.String())
	}
}
