package processor_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/internal/testutil"
	"github.com/orderflow/orderflow/internal/workload"
	"github.com/orderflow/orderflow/processor"
)

// TestSecureEndToEnd runs the processor against a real broker through a
// SASL_SSL listener only (a CA the test made; SCRAM credentials created at
// format time): topic checks, the group, transactions and restores all go
// over TLS with SCRAM. Each mechanism logs in; a wrong password, a client
// without TLS and a CA that did not sign the broker are refused.
func TestSecureEndToEnd(t *testing.T) {
	ca := kafkatest.NewTestCA(t)
	const user, password = "alice", "of-test-pw-7Hq2"
	lc := kafkatest.StartLocalSecure(t, 1, kafkatest.Security{CertFile: ca.CertFile, KeyFile: ca.KeyFile, User: user, Password: password})
	secure := &kafkatest.Cluster{Brokers: lc.SecureBrokers, Real: true}

	for _, mech := range []string{processor.SASLPlain, processor.SASLScramSHA256, processor.SASLScramSHA512} {
		conn := processor.Connection{CAFile: ca.CAFile, SASLMechanism: mech, SASLUser: user, SASLPassword: password}
		if err := ping(t, secure, conn); err != nil {
			t.Fatalf("SASL_SSL %s: %v", mech, err)
		}
		conn.SASLPassword = "wrong"
		if err := ping(t, secure, conn); err == nil {
			t.Fatalf("SASL_SSL %s with a wrong password connected", mech)
		}
	}
	if err := ping(t, secure, processor.Connection{SASLMechanism: processor.SASLScramSHA256, SASLUser: user, SASLPassword: password}); err == nil {
		t.Fatal("a client without TLS talked to the SASL_SSL listener")
	}
	other := kafkatest.NewTestCA(t)
	if err := ping(t, secure, processor.Connection{CAFile: other.CAFile, SASLMechanism: processor.SASLScramSHA256, SASLUser: user, SASLPassword: password}); err == nil {
		t.Fatal("TLS accepted a broker certificate from another CA")
	}

	// Topics are made (and outputs read) by the test over plaintext; the
	// processor uses the SASL_SSL listener only.
	e := newEnv(t, &lc.Cluster, 3)
	items := workload.Generate(workload.Options{Seed: 21, Orders: 1000})
	e.produce(t, items)
	var logs testutil.SyncBuffer
	for i, mech := range []string{processor.SASLScramSHA512, processor.SASLScramSHA256} {
		conn := processor.Connection{CAFile: ca.CAFile, SASLMechanism: mech, SASLUser: user, SASLPassword: password}
		opts, err := conn.Opts()
		if err != nil {
			t.Fatal(err)
		}
		cfg := e.instance(t, "secure", t.TempDir()) // a fresh store: the second run restores it all over TLS
		cfg.Brokers = lc.SecureBrokers
		cfg.KafkaOpts = opts
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		p, stop := run(t, cfg)
		if i == 0 {
			o := e.waitOutputs(t, len(items), 3*time.Minute)
			if err := stop(); err != nil {
				t.Fatalf("Run over SASL_SSL %s: %v", mech, err)
			}
			checkExactlyOnce(t, items, o)
			e.checkChangelog(t, items)
			continue
		}
		deadline := time.Now().Add(2 * time.Minute)
		for !p.Ready() || len(p.Assigned()) != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("second instance (%s) not ready within 2 minutes", mech)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, states := replay(items)
		for id, want := range states {
			got, err := p.Order(kafkatest.PartitionOf(id, 3), id)
			if err != nil || got.State != want.State || got.Version != want.Version {
				t.Fatalf("order %s restored over SASL_SSL: %+v, %v; want %s v%d", id, got, err, want.State, want.Version)
			}
		}
		if err := stop(); err != nil {
			t.Fatalf("Run over SASL_SSL %s: %v", mech, err)
		}
		if st := p.Stats(); st.Restored < int64(len(states)) {
			t.Fatalf("restored %d changelog records, want at least %d", st.Restored, len(states))
		}
	}
	if strings.Contains(logs.String(), password) {
		t.Fatal("the SASL password is in the processor's logs")
	}
}
