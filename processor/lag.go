package processor

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

var descLag = desc("consumer_lag", "Records of an owned input partition not yet committed by the group (end offset minus committed offset), computed when scraped.", "partition")

// lagCollector exports the consumer lag of the partitions this instance
// owns (so that summing over instances gives the group's lag), asking the
// brokers when scraped, through the admin client of the running processor.
type lagCollector struct {
	p   *Processor
	adm atomic.Pointer[kadm.Client] // set while Run has an admin client
}

func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descLag }

func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	adm := l.adm.Load()
	owned := l.p.Assigned()
	if adm == nil || len(owned) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cfg := &l.p.cfg
	lags, err := adm.Lag(ctx, cfg.AppID)
	if err == nil {
		err = lags.Error()
	}
	if err != nil {
		l.p.log.Debug("computing the consumer lag", "err", err)
		return
	}
	gl := lags[cfg.AppID].Lag
	for _, part := range owned {
		lag, ok := gl.Lookup(cfg.Topics.Events, part)
		if !ok || lag.Err != nil || lag.Lag < 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, float64(lag.Lag), strconv.Itoa(int(part)))
	}
}
