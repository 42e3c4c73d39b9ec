// Command kmeta prints a Kafka cluster's metadata (brokers, controller,
// topics) with franz-go. deploy/kafka/start.sh uses it with -expect to wait
// until every broker of a fresh cluster has registered.
//
//	go run ./deploy/kafka/kmeta -brokers 127.0.0.1:19092
//	go run ./deploy/kafka/kmeta -brokers 127.0.0.1:19092 -expect 3 -timeout 60s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "comma-separated bootstrap addresses")
	expect := flag.Int("expect", 0, "wait until the metadata lists at least this many brokers")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	flag.Parse()
	if *brokers == "" {
		fmt.Fprintln(os.Stderr, "kmeta: -brokers (or KAFKA_BROKERS) is required")
		os.Exit(2)
	}
	if err := run(strings.Split(*brokers, ","), *expect, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "kmeta:", err)
		os.Exit(1)
	}
}

func run(seeds []string, expect int, timeout time.Duration) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		md, err := adm.Metadata(ctx)
		if err == nil && len(md.Brokers) >= expect {
			printMetadata(md)
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("metadata from %v: %w", seeds, err)
			}
			return fmt.Errorf("%d of %d brokers registered after %s", len(md.Brokers), expect, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func printMetadata(md kadm.Metadata) {
	fmt.Printf("cluster %s, controller %d, %d broker(s):\n", md.Cluster, md.Controller, len(md.Brokers))
	for _, b := range md.Brokers {
		fmt.Printf("  broker %d at %s:%d\n", b.NodeID, b.Host, b.Port)
	}
	names := md.Topics.Names()
	sort.Strings(names)
	fmt.Printf("%d topic(s)\n", len(names))
	for _, t := range names {
		fmt.Printf("  %s (%d partitions)\n", t, len(md.Topics[t].Partitions))
	}
}
