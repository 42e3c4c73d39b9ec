package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/orderflow/orderflow/internal/httpapi"
	"github.com/orderflow/orderflow/internal/partitioner"
	"github.com/orderflow/orderflow/processor"
	"github.com/orderflow/orderflow/statestore"
	"github.com/orderflow/orderflow/topology"
)

// kafkaFlags are the flags of every command that talks to Kafka.
type kafkaFlags struct {
	brokers           []string
	conn              processor.Connection
	schemaRegistryURL string
	registry          processor.SchemaRegistry
	writerSchemas     string // --writer-schemas, of the commands that have it
}

func addKafkaFlags(fs *pflag.FlagSet, k *kafkaFlags) {
	fs.StringSliceVar(&k.brokers, "brokers", nil, "seed brokers, HOST:PORT[,HOST:PORT...] (required)")
	fs.StringVar(&k.schemaRegistryURL, "schema-registry-url", "", "Confluent schema registry URL, http(s)://HOST:PORT[,...]: Avro in the Confluent wire format (default: Avro single-object encoding, no registry)")
	fs.BoolVar(&k.conn.TLS, "tls", false, "connect to the brokers with TLS (implied by the other --tls-* flags)")
	fs.StringVar(&k.conn.CAFile, "tls-ca", "", "PEM file of the CA certificates that sign the brokers' certificates (default: the system's)")
	fs.StringVar(&k.conn.CertFile, "tls-cert", "", "PEM client certificate, for brokers that authenticate clients by TLS (with --tls-key)")
	fs.StringVar(&k.conn.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	fs.BoolVar(&k.conn.InsecureSkipVerify, "tls-insecure-skip-verify", false, "accept any broker certificate (tests only: it allows man-in-the-middle attacks)")
	fs.StringVar(&k.conn.SASLMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default: no SASL)")
	fs.StringVar(&k.conn.SASLUser, "sasl-user", "", "SASL user name")
	fs.StringVar(&k.conn.SASLPassword, "sasl-password", "", "SASL password; prefer the environment variable ORDERFLOW_SASL_PASSWORD (a flag shows in ps and shell history)")
	markSecret(fs, "sasl-password")
	addRegistryFlags(fs, &k.registry)
}

// check returns the brokers, or an error saying how to give them.
func (k *kafkaFlags) check() ([]string, error) {
	var brokers []string
	for _, b := range k.brokers {
		if b = strings.TrimSpace(b); b != "" {
			brokers = append(brokers, b)
		}
	}
	if len(brokers) == 0 {
		return nil, errors.New("no brokers: give --brokers HOST:PORT[,HOST:PORT] (or ORDERFLOW_BROKERS)")
	}
	if k.registry.Timeout <= 0 { // as run's limits say it
		return nil, fmt.Errorf("--schema-registry-timeout %v: a positive duration (e.g. 10s)", k.registry.Timeout)
	}
	return brokers, nil
}

// setup fills the flags of fs from the environment (applyConfig) and
// returns the brokers and the connection options, or a configuration error
// (exit 2).
func (k *kafkaFlags) setup(fs *pflag.FlagSet) ([]string, []kgo.Opt, error) {
	if _, err := applyConfig(fs, os.LookupEnv); err != nil {
		return nil, nil, configError(err)
	}
	brokers, err := k.check()
	if err != nil {
		return nil, nil, configError(err)
	}
	opts, err := k.conn.Opts()
	if err != nil {
		return nil, nil, configError(err)
	}
	return brokers, opts, nil
}

// runDeps are what `run` takes from the process, so tests can replace them.
type runDeps struct {
	// notify subscribes to the shutdown signals; stop unsubscribes.
	notify func(chan<- os.Signal)
	stop   func(chan<- os.Signal)
	// exit ends the process (a forced shutdown).
	exit func(code int)
}

func processDeps() runDeps {
	return runDeps{
		notify: func(c chan<- os.Signal) { signal.Notify(c, syscall.SIGINT, syscall.SIGTERM) },
		stop:   func(c chan<- os.Signal) { signal.Stop(c) },
		exit:   os.Exit,
	}
}

func newRunCmd() *cobra.Command { return newRunCmdWith(processDeps()) }

func newRunCmdWith(deps runDeps) *cobra.Command {
	var (
		k               kafkaFlags
		configFile      string
		printCfg        bool
		stateDir        string
		instanceID      string
		machineFile     string
		guarantee       string
		logFormat       string
		logLevel        string
		shutdownTimeout time.Duration
		httpAddr        string
		advertiseURL    string
		partitionerName string
	)
	d := processor.DefaultConfig()
	cfg := d
	retention := durationValue(d.Retention)

	cmd := &cobra.Command{
		Use:   "run --brokers HOST:PORT[,..] [--state-dir DIR] [--instance-id NAME] [--config FILE]",
		Short: "Run the stream processor: consume order events, emit transitions and rejections",
		Long: `Run consumes order events from the events topic in the consumer group
--app-id, applies each to the order's state (kept in a local Pebble store in
--state-dir, backed by a compacted changelog topic) and emits accepted
transitions to the status topic and refused events to the rejections topic,
exactly once by default. Missing topics are created at start.

Every flag can also be set in the environment as ORDERFLOW_<FLAG> (upper
case, '-' as '_': ORDERFLOW_COMMIT_INTERVAL=250ms) or in the YAML file given
by --config (or ORDERFLOW_CONFIG), whose keys are the flag names
(commit-interval: 250ms). Flags win over the environment, which wins over the
file. Pass the SASL password as ORDERFLOW_SASL_PASSWORD rather than a flag.

The first SIGINT or SIGTERM shuts down cleanly (the current batch is
committed, the group left, the store closed); a second one, or
--shutdown-timeout without the shutdown finishing, exits at once with code 1.
A configuration error exits with code 2.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fs := cmd.Flags()
			sources, err := applyConfig(fs, os.LookupEnv)
			if err != nil {
				return configError(err)
			}
			if printCfg {
				out, err := printConfig(fs, sources)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(out)
				return err
			}
			cfg.SchemaRegistryURL, cfg.SchemaRegistry = k.schemaRegistryURL, k.registry
			if err := checkLimits(fs, sources, runLimits(&cfg, time.Duration(retention), shutdownTimeout)); err != nil {
				return err
			}
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return configError(err)
			}
			if cfg.Brokers, err = k.check(); err != nil {
				return configError(err)
			}
			if cfg.KafkaOpts, err = k.conn.Opts(); err != nil {
				return configError(err)
			}
			if cfg.WriterSchemas, err = readWriterSchemas(k.writerSchemas, log); err != nil {
				return err
			}
			cfg.InstanceID = instanceID
			if cfg.InstanceID == "" {
				if cfg.InstanceID, err = os.Hostname(); err != nil || cfg.InstanceID == "" {
					return configError(fmt.Errorf("cannot read the host name (%v): give --instance-id NAME", err))
				}
			}
			cfg.StateDir = stateDir
			if cfg.StateDir == "" {
				cfg.StateDir = filepath.Join("orderflow-state", cfg.InstanceID)
			}
			cfg.Guarantee = processor.Guarantee(guarantee)
			if partitionerName != "" {
				if cfg.Partitioner, err = partitioner.Parse(partitionerName); err != nil {
					return configError(fmt.Errorf("--partitioner: %w", err))
				}
			}
			cfg.Retention = time.Duration(retention)
			if machineFile != "" {
				if cfg.Machine, err = topology.LoadFile(machineFile); err != nil {
					return configError(fmt.Errorf("--machine: %w", err))
				}
			}
			cfg.Logger = log
			p, err := processor.New(cfg)
			if err != nil {
				return configError(err)
			}
			if k.conn.Mechanism() == processor.SASLPlain && !k.conn.TLSEnabled() {
				log.Warn("SASL PLAIN without TLS sends the password in clear text; add --tls")
			}
			if configFile == "" {
				configFile = os.Getenv(envName(configFlag))
			}
			b := buildVersion()
			log.Info("orderflow run", "version", b.Version, "commit", b.Commit, "built", b.Date, "brokers", cfg.Brokers, "connection", k.conn,
				"instance", cfg.InstanceID, "state_dir", cfg.StateDir, "config_file", configFile)
			run := p.Run
			if httpAddr != "" {
				api, ln, err := newAPI(p, httpAddr, advertiseURL, log)
				if err != nil {
					return configError(err)
				}
				run = func(ctx context.Context) error { return runWithAPI(ctx, p, api, ln) }
			}
			return runUntilSignal(cmd.Context(), run, deps, shutdownTimeout, log, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	addKafkaFlags(fs, &k)
	fs.StringVar(&configFile, configFlag, "", "YAML config file; keys are the flag names (commit-interval: 250ms)")
	fs.BoolVar(&printCfg, printConfigArg, false, "print the effective configuration as a config file (password left out) and exit")
	fs.StringVar(&instanceID, "instance-id", "", "this instance's name, stable across restarts and unique among running instances (default: the host name)")
	fs.StringVar(&stateDir, "state-dir", "", "directory of the local state store (default: ./orderflow-state/<instance-id>)")
	fs.StringVar(&cfg.AppID, "app-id", d.AppID, "application id: the consumer group and the changelog topic's prefix (<app-id>-state-changelog)")
	fs.StringVar(&guarantee, "guarantee", string(d.Guarantee), "processing guarantee: exactly_once or at_least_once")
	fs.DurationVar(&cfg.CommitInterval, "commit-interval", d.CommitInterval, "upper bound of a batch (one transaction or offset commit)")
	fs.BoolVar(&cfg.EndIdleBatches, "end-idle-batches", false, "end a batch as soon as no fetched input waits, not at --commit-interval: lower latency, more transactions")
	fs.IntVar(&cfg.MaxBatchRecords, "max-batch-records", d.MaxBatchRecords, "input records per batch at most")
	fs.IntVar(&cfg.RestoreConcurrency, "restore-concurrency", d.RestoreConcurrency, "partitions restored from the changelog at once (each holds a fetch in memory)")
	fs.IntVar(&cfg.StandbyReplicas, "standby-replicas", d.StandbyReplicas, "standby copies of each partition kept current on other instances, for failover in seconds and stale reads while an owner is down (0: none)")
	fs.Int64Var(&cfg.AcceptableRecoveryLag, "acceptable-recovery-lag", d.AcceptableRecoveryLag, "with --standby-replicas: how many changelog offsets an instance's copy may be behind the owner's for a partition to move to it; a move to a copy further behind waits while it warms up")
	fs.IntVar(&cfg.Threads, "threads", d.Threads, "consumer-group members (each with its own client and transaction) in this instance, sharing its store; about one per core")
	fs.StringVar(&machineFile, "machine", "", "order state machine file, YAML (default: the built-in machine)")
	addWriterSchemasFlag(fs, &k.writerSchemas)
	fs.StringVar(&cfg.Topics.Events, "events-topic", d.Topics.Events, "input topic of order events")
	fs.StringVar(&cfg.Topics.Status, "status-topic", d.Topics.Status, "output topic of accepted transitions")
	fs.StringVar(&cfg.Topics.Rejections, "rejections-topic", d.Topics.Rejections, "output topic of refused events")
	fs.StringVar(&cfg.Topics.DLQ, "dlq-topic", d.Topics.DLQ, "dead-letter topic of undecodable input records")
	fs.StringVar(&partitionerName, "partitioner", "", "partitioner of the events' producers, for order queries: "+partitioner.Names+" (default: the one the input shows, murmur2 until it shows crc32)")
	fs.Int32Var(&cfg.Partitions, "partitions", d.Partitions, "partitions of the topics created at start when the events topic is missing")
	fs.Int16Var(&cfg.ReplicationFactor, "replication-factor", d.ReplicationFactor, "replication factor of created topics (0: min(3, brokers))")
	fs.BoolVar(&cfg.ReseedChangelog, "reseed-changelog", false, "write every order state of --state-dir to the changelog (after it was deleted or created again), record it, and exit; then start without this flag")
	fs.Var(&retention, "retention", "how long a closed order is kept (e.g. 7d, 36h; 0 keeps orders forever)")
	fs.DurationVar(&cfg.SweepInterval, "sweep-interval", d.SweepInterval, "how often closed orders past --retention are deleted")
	fs.IntVar(&cfg.SweepLimit, "sweep-limit", d.SweepLimit, "most orders of one partition a sweep deletes; a sweep that reaches it runs again in the next batch")
	fs.DurationVar(&cfg.SessionTimeout, "session-timeout", d.SessionTimeout, "consumer group session timeout")
	fs.DurationVar(&cfg.TransactionTimeout, "transaction-timeout", d.TransactionTimeout, "Kafka transaction timeout (how long a crashed instance's open transaction blocks its partitions)")
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", 30*time.Second, "after the first signal, exit anyway when the clean shutdown takes longer")
	fs.StringVar(&logFormat, "log-format", "auto", "log format: text, json, or auto (text on a terminal, json otherwise)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&httpAddr, "http-addr", defaultHTTPAddr, "address of the HTTP API: /metrics, /healthz, /readyz, /orders/{id}, /states (empty disables it)")
	fs.StringVar(&advertiseURL, "advertise-url", "", "URL at which the other instances reach this one's HTTP API, for forwarded order queries (default: http://<http-addr>, with the host name when it listens on all interfaces)")
	return cmd
}

const defaultHTTPAddr = "127.0.0.1:8080"

// listen opens the HTTP API's listener; the tests replace it to refuse the
// default --http-addr, a fixed port another process may hold.
var listen = net.Listen

// newAPI listens on addr and returns the HTTP API of p (with the peers view
// behind /orders), advertised at advertise.
func newAPI(p *processor.Processor, addr, advertise string, log *slog.Logger) (*httpapi.Server, net.Listener, error) {
	if advertise == "" {
		var err error
		if advertise, err = defaultAdvertiseURL(addr, os.Hostname); err != nil {
			return nil, nil, err
		}
	}
	ln, err := listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--http-addr: %w", err)
	}
	peers, err := processor.NewPeers(p, processor.PeersConfig{AdvertiseURL: advertise})
	if err == nil {
		var api *httpapi.Server
		if api, err = httpapi.New(httpapi.Options{Processor: p, Peers: peers, Logger: log, Collectors: []prometheus.Collector{buildVersion().collector()}}); err == nil {
			return api, ln, nil
		}
	}
	ln.Close()
	return nil, nil, err
}

// defaultAdvertiseURL derives the URL other instances use to reach an API
// listening on addr (host:port): http://addr, or http://<host name>:port when
// addr listens on every interface (":8080", "0.0.0.0:8080", "[::]:8080").
func defaultAdvertiseURL(addr string, hostname func() (string, error)) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("--http-addr %q: want HOST:PORT: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if host, err = hostname(); err != nil || host == "" {
			return "", fmt.Errorf("cannot read the host name (%v): give --advertise-url http://HOST:PORT", err)
		}
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// runWithAPI runs the processor and its HTTP API side by side until ctx is
// done or either fails, which stops the other. The API's context ends when
// the processor's Run has returned, not with ctx, so that it answers through
// the processor's whole shutdown (/readyz turns 503 as partitions are
// revoked).
func runWithAPI(ctx context.Context, p *processor.Processor, api *httpapi.Server, ln net.Listener) error {
	g, gctx := errgroup.WithContext(ctx)
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	g.Go(func() error {
		defer stopAPI()
		return p.Run(gctx)
	})
	g.Go(func() error { return api.Serve(apiCtx, ln) })
	return g.Wait()
}

// runUntilSignal runs run (a Processor's Run) until ctx is done or a
// shutdown signal arrives. The first signal cancels run's context (a clean
// shutdown); a second one, or the shutdown timeout, calls deps.exit(1).
func runUntilSignal(ctx context.Context, run func(context.Context) error, deps runDeps, timeout time.Duration, log *slog.Logger, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 2)
	deps.notify(sigs)
	defer deps.stop(sigs)

	done := make(chan struct{})
	watchdog := make(chan struct{})
	go func() {
		defer close(watchdog)
		var first os.Signal
		select {
		case first = <-sigs:
		case <-done:
			return
		}
		log.Info("shutting down: finishing the batch, leaving the group (send the signal again to exit at once)",
			"signal", first.String(), "timeout", timeout)
		cancel()
		t := time.NewTimer(timeout)
		defer t.Stop()
		var why string
		select {
		case s := <-sigs:
			why = "second signal (" + s.String() + ")"
		case <-t.C:
			why = fmt.Sprintf("shutdown took longer than --shutdown-timeout %v", timeout)
		case <-done:
			return
		}
		fmt.Fprintf(stderr, "orderflow: %s: exiting without a clean shutdown (the next start restores from the changelog)\n", why)
		deps.exit(1)
	}()
	err := run(ctx)
	close(done)
	<-watchdog
	if err != nil {
		if errors.Is(err, processor.ErrTopology) || errors.Is(err, statestore.ErrInUse) {
			return configError(err)
		}
		return kafkaExit(err)
	}
	return nil
}

// kafkaExit is the exit of a command that failed talking to Kafka: code 2
// for a configuration error (as a listener that does not speak the
// connection's security protocol), else 1.
func kafkaExit(err error) error {
	if e := processor.ExplainConnectionError(err); errors.Is(e, processor.ErrConfig) {
		return configError(e)
	}
	if _, ok := err.(*exitError); ok {
		return err
	}
	return &exitError{code: 1, err: err}
}

// newLogger returns the logger of `run`, writing to w.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "auto", "":
		if isTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: use text, json or auto", format)
	}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
