package processor_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/internal/kafkatest"
	"github.com/orderflow/orderflow/processor"
)

var registryTopics = avro.Topics{Events: "orders.events", Status: "orders.status", Rejections: "orders.rejections"}

// A malformed registry URL, or registry settings that do not go together,
// are refused by New: before Run creates any topic.
func TestNewRefusesBadRegistryConfig(t *testing.T) {
	for _, tc := range []struct {
		url  string
		reg  processor.SchemaRegistry
		want string
	}{
		{url: "http://[::1", want: `Config.SchemaRegistryURL "http://[::1"`},
		{url: "registry:8081", want: "want http://HOST:PORT"},
		{url: "https://u:pw@registry:8081", want: "credentials in it"},
		{url: " , ", want: "names no registry"},
		{url: "http://registry:8081", reg: processor.SchemaRegistry{Username: "u"}, want: "Config.SchemaRegistry.Password"},
		{url: "http://registry:8081", reg: processor.SchemaRegistry{CAFile: "ca.pem"}, want: "is not https"},
		{url: "", reg: processor.SchemaRegistry{LookupOnly: true}, want: "Config.SchemaRegistryURL is empty"},
	} {
		cfg := processor.DefaultConfig()
		cfg.Brokers, cfg.StateDir = []string{"127.0.0.1:1"}, t.TempDir()
		cfg.SchemaRegistryURL, cfg.SchemaRegistry = tc.url, tc.reg
		_, err := processor.New(cfg)
		if !errors.Is(err, processor.ErrConfig) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "pw@") {
			t.Errorf("%q %v: err %v, want ErrConfig saying %q", tc.url, tc.reg, err, tc.want)
		}
	}
	// Several URLs, as Confluent's clients take them.
	cfg := processor.DefaultConfig()
	cfg.Brokers, cfg.StateDir = []string{"127.0.0.1:1"}, t.TempDir()
	cfg.SchemaRegistryURL = "http://a:8081, https://b:8081/"
	if _, err := processor.New(cfg); err != nil {
		t.Fatal(err)
	}
}

// The password is not printed with the settings.
func TestSchemaRegistryRedactsPassword(t *testing.T) {
	r := processor.SchemaRegistry{Username: "u", Password: "hunter2"}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r)} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "u") {
			t.Errorf("printed as %q", s)
		}
	}
}

// Basic auth: the credentials are sent; wrong ones are a configuration
// error that names them.
func TestRegistryBasicAuth(t *testing.T) {
	reg := srfake.New(srfake.WithAuth("Basic " + base64.StdEncoding.EncodeToString([]byte("key:secret"))))
	defer reg.Close()
	ctx := context.Background()
	if _, err := processor.NewRegistryCodec(ctx, reg.URL(), processor.SchemaRegistry{Username: "key", Password: "secret"}, registryTopics); err != nil {
		t.Fatal(err)
	}
	_, err := processor.NewRegistryCodec(ctx, reg.URL(), processor.SchemaRegistry{Username: "key", Password: "wrong"}, registryTopics)
	if !errors.Is(err, processor.ErrConfig) || !strings.Contains(err.Error(), "Config.SchemaRegistry.Username") {
		t.Fatalf("wrong password: err %v, want ErrConfig naming the credentials", err)
	}
}

// TLS: a registry with a certificate of the test's CA that wants client
// certificates is reached with CAFile, CertFile and KeyFile; without the CA
// the error says which setting to fix.
func TestRegistryTLS(t *testing.T) {
	ca := kafkatest.NewTestCA(t)
	reg := srfake.New()
	defer reg.Close()
	srv := httptest.NewUnstartedServer(reg.Handler())
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.ServerCert(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(t),
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
	srv.StartTLS()
	defer srv.Close()
	ctx := context.Background()
	mtls := processor.SchemaRegistry{CAFile: ca.CAFile, CertFile: ca.ClientCertFile, KeyFile: ca.ClientKeyFile}
	if _, err := processor.NewRegistryCodec(ctx, srv.URL, mtls, registryTopics); err != nil {
		t.Fatal(err)
	}
	if _, ok := reg.GetSchema("orders.events-value", 1); !ok {
		t.Fatal("nothing registered through TLS")
	}
	_, err := processor.NewRegistryCodec(ctx, srv.URL, processor.SchemaRegistry{CertFile: ca.ClientCertFile, KeyFile: ca.ClientKeyFile}, registryTopics)
	if !errors.Is(err, processor.ErrConfig) || !strings.Contains(err.Error(), "Config.SchemaRegistry.CAFile") {
		t.Fatalf("unknown CA: err %v, want ErrConfig naming the CA file", err)
	}
	_, err = processor.NewRegistryCodec(ctx, srv.URL, processor.SchemaRegistry{CAFile: ca.CAFile, KeyFile: ca.ClientKeyFile}, registryTopics)
	if !errors.Is(err, processor.ErrConfig) || !strings.Contains(err.Error(), "Config.SchemaRegistry.KeyFile is set without Config.SchemaRegistry.CertFile") {
		t.Fatalf("key without certificate: err %v", err)
	}
}

// A registry whose ACLs refuse registration (every POST): registering fails
// with a configuration error that points at lookup-only; lookup-only finds
// the schemas registered beforehand, and names a subject that lacks one.
func TestRegistryLookupOnly(t *testing.T) {
	reg := srfake.New()
	defer reg.Close()
	for subject, record := range map[string]string{"orders.events-value": avro.RecordOrderEvent, "orders.status-value": avro.RecordStatusChange} {
		text, err := avro.Schema(record)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := reg.RegisterSchema(subject, sr.Schema{Schema: text, Type: sr.TypeAvro}); err != nil {
			t.Fatal(err)
		}
	}
	reg.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet {
			return false
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error_code":40301,"message":"User is denied operation Write on Subject"}`))
		return true
	})
	ctx := context.Background()
	topics := avro.Topics{Events: "orders.events", Status: "orders.status"}
	_, err := processor.NewRegistryCodec(ctx, reg.URL(), processor.SchemaRegistry{}, topics)
	if !errors.Is(err, processor.ErrConfig) || !strings.Contains(err.Error(), "Config.SchemaRegistry.LookupOnly") {
		t.Fatalf("registration refused: err %v, want ErrConfig pointing at lookup-only", err)
	}
	lookup := processor.SchemaRegistry{LookupOnly: true}
	if _, err := processor.NewRegistryCodec(ctx, reg.URL(), lookup, topics); err != nil {
		t.Fatal(err)
	}
	_, err = processor.NewRegistryCodec(ctx, reg.URL(), lookup, registryTopics)
	if !errors.Is(err, processor.ErrConfig) || !errors.Is(err, avro.ErrNotRegistered) || !strings.Contains(err.Error(), "orders.rejections-value") {
		t.Fatalf("missing subject: err %v, want ErrConfig naming orders.rejections-value", err)
	}
}
