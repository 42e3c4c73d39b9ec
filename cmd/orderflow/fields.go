package main

import "regexp"

// fieldFlags maps the configuration fields the library's errors name
// (processor.Config, processor.Connection, processor.PeersConfig, and
// demo.Options for the demo) to the flags that set them, so that a CLI user
// reads the flag to fix.
var fieldFlags = map[string]string{
	"Config.Brokers":               "--brokers",
	"Config.AppID":                 "--app-id",
	"Config.InstanceID":            "--instance-id",
	"Config.Topics.Events":         "--events-topic",
	"Config.Topics.Status":         "--status-topic",
	"Config.Topics.Rejections":     "--rejections-topic",
	"Config.Topics.DLQ":            "--dlq-topic",
	"Config.Guarantee":             "--guarantee",
	"Config.CommitInterval":        "--commit-interval",
	"Config.EndIdleBatches":        "--end-idle-batches",
	"Config.MaxBatchRecords":       "--max-batch-records",
	"Config.Threads":               "--threads",
	"Config.StateDir":              "--state-dir",
	"Config.Machine":               "--machine",
	"Config.Partitions":            "--partitions",
	"Config.ReplicationFactor":     "--replication-factor",
	"Config.Retention":             "--retention",
	"Config.SweepInterval":         "--sweep-interval",
	"Config.SweepLimit":            "--sweep-limit",
	"Config.SchemaRegistryURL":     "--schema-registry-url",
	"Config.WriterSchemas":         "--writer-schemas",
	"Config.SessionTimeout":        "--session-timeout",
	"Config.RestoreConcurrency":    "--restore-concurrency",
	"Config.StandbyReplicas":       "--standby-replicas",
	"Config.AcceptableRecoveryLag": "--acceptable-recovery-lag",
	"Config.TransactionTimeout":    "--transaction-timeout",
	"Config.ReseedChangelog":       "--reseed-changelog",

	"Connection.TLS":                "--tls",
	"Connection.CAFile":             "--tls-ca",
	"Connection.CertFile":           "--tls-cert",
	"Connection.KeyFile":            "--tls-key",
	"Connection.InsecureSkipVerify": "--tls-insecure-skip-verify",
	"Connection.SASLMechanism":      "--sasl-mechanism",
	"Connection.SASLUser":           "--sasl-user",
	// The password belongs in the environment: a flag shows in ps.
	"Connection.SASLPassword": "ORDERFLOW_SASL_PASSWORD (or --sasl-password)",

	"Config.SchemaRegistry.Username":           "--schema-registry-user",
	"Config.SchemaRegistry.Password":           "ORDERFLOW_SCHEMA_REGISTRY_PASSWORD (or --schema-registry-password)",
	"Config.SchemaRegistry.CAFile":             "--schema-registry-ca",
	"Config.SchemaRegistry.CertFile":           "--schema-registry-cert",
	"Config.SchemaRegistry.KeyFile":            "--schema-registry-key",
	"Config.SchemaRegistry.InsecureSkipVerify": "--schema-registry-insecure-skip-verify",
	"Config.SchemaRegistry.LookupOnly":         "--schema-registry-lookup-only",
	"Config.SchemaRegistry.Timeout":            "--schema-registry-timeout",

	"PeersConfig.AdvertiseURL": "--advertise-url",

	"Options.Events":     "--events",
	"Options.Orders":     "--orders",
	"Options.Rate":       "--rate",
	"Options.Instances":  "--instances",
	"Options.Partitions": "--partitions",
	"Options.Chaos":      "--chaos",
	"Options.Duration":   "--duration",

	"RepartitionOptions.Partitions":  "--partitions",
	"RepartitionOptions.Partitioner": "--partitioner",
}

// fieldRef matches a field name in a library error: Config.Topics.Events.
var fieldRef = regexp.MustCompile(`\b(?:Config|Connection|PeersConfig|Options|RepartitionOptions)(?:\.[A-Z][A-Za-z]*)+`)

// withFlagNames returns msg with every field of fieldFlags it names replaced
// by its flag; other text, and fields without a flag, stay as they are.
func withFlagNames(msg string) string {
	return fieldRef.ReplaceAllStringFunc(msg, func(field string) string {
		if flag, ok := fieldFlags[field]; ok {
			return flag
		}
		return field
	})
}
