package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/orderflow/orderflow/avro"
	"github.com/orderflow/orderflow/processor"
)

// addRegistryFlags adds the flags of the schema registry (beyond its URL)
// to a command that talks to Kafka.
func addRegistryFlags(fs *pflag.FlagSet, r *processor.SchemaRegistry) {
	fs.StringVar(&r.Username, "schema-registry-user", "", "schema registry basic auth user (an API key on Confluent Cloud)")
	fs.StringVar(&r.Password, "schema-registry-password", "", "schema registry basic auth password; prefer the environment variable ORDERFLOW_SCHEMA_REGISTRY_PASSWORD")
	markSecret(fs, "schema-registry-password")
	fs.StringVar(&r.CAFile, "schema-registry-ca", "", "PEM file of the CA certificates that sign the registry's certificate (an https URL; default: the system's)")
	fs.StringVar(&r.CertFile, "schema-registry-cert", "", "PEM client certificate, for a registry that authenticates clients by TLS (with --schema-registry-key)")
	fs.StringVar(&r.KeyFile, "schema-registry-key", "", "PEM private key of --schema-registry-cert")
	fs.BoolVar(&r.InsecureSkipVerify, "schema-registry-insecure-skip-verify", false, "accept any registry certificate (tests only)")
	fs.BoolVar(&r.LookupOnly, "schema-registry-lookup-only", false, "register no schema: find orderflow's among those registered under the subjects (GET requests only), for registries whose ACLs refuse registration")
	fs.DurationVar(&r.Timeout, "schema-registry-timeout", avro.DefaultRegistryTimeout, "bound of each schema registry request")
}

// addWriterSchemasFlag adds --writer-schemas to a command that decodes
// events.
func addWriterSchemasFlag(fs *pflag.FlagSet, dir *string) {
	fs.StringVar(dir, "writer-schemas", "", "directory of .avsc files: further versions of the event schema producers write with (each checked for compatibility at start)")
}

// readWriterSchemas reads the writer schemas of --writer-schemas dir ("":
// none) and logs each with its fingerprint (log may be nil).
func readWriterSchemas(dir string, log *slog.Logger) ([]string, error) {
	if dir == "" {
		return nil, nil
	}
	ws, err := avro.ReadWriterSchemas(dir)
	if err != nil {
		return nil, configError(fmt.Errorf("--writer-schemas: %w", err))
	}
	texts := make([]string, len(ws))
	for i, w := range ws {
		texts[i] = w.Text
		if log != nil {
			log.Info("writer schema", "file", w.Path, "record", w.Record, "fingerprint", w.Fingerprint.String())
		}
	}
	return texts, nil
}

// newCodec returns the Avro codec of a command: single-object encoding, or
// the Confluent wire format with the schema registry of k (registering, or
// looking up, the schemas of the record types topics names); it knows the
// writer schemas of --writer-schemas. Its errors are *exitError.
func (k *kafkaFlags) newCodec(ctx context.Context, topics avro.Topics) (*avro.Codec, error) {
	texts, err := readWriterSchemas(k.writerSchemas, nil)
	if err != nil {
		return nil, err
	}
	opts := []avro.Option{avro.WithWriterSchemas(texts...)}
	var c *avro.Codec
	if k.schemaRegistryURL == "" {
		c, err = avro.NewCodec(opts...)
	} else {
		c, err = processor.NewRegistryCodec(ctx, k.schemaRegistryURL, k.registry, topics, opts...)
	}
	if err != nil {
		return nil, kafkaExit(err)
	}
	return c, nil
}

func newSchemaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Avro schema tools",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "fingerprint FILE",
		Short: "Print the CRC-64-AVRO fingerprint of an Avro schema (.avsc; - for stdin)",
		Long: `fingerprint prints the CRC-64-AVRO fingerprint of the Avro schema in FILE
(- reads stdin): the Avro specification's, over the schema's Parsing
Canonical Form, as 16 hex digits in the order of the bytes in a
single-object encoded record (after its C3 01 marker). That is the order
other Avro libraries print the fingerprint's bytes in; Java's
SchemaNormalization.parsingFingerprint64 returns the same bytes read as a
little-endian long.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b []byte
			var err error
			if args[0] == "-" {
				b, err = io.ReadAll(cmd.InOrStdin())
			} else {
				b, err = os.ReadFile(args[0])
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fp, err := avro.SchemaFingerprint(string(b))
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: not an Avro schema: %w", args[0], err)}
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), fp)
			return err
		},
	})
	return cmd
}
