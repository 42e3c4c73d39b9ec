package processor

import (
	"reflect"
	"testing"
)

// TestZeroMeansDefault: New treats a zero field as DefaultConfig's value,
// for every field but Retention, where 0 disables retention.
func TestZeroMeansDefault(t *testing.T) {
	d := DefaultConfig()
	if d.Retention != defaultRetention {
		t.Fatalf("DefaultConfig().Retention = %v, want %v", d.Retention, defaultRetention)
	}
	if d.Threads != 1 {
		t.Errorf("DefaultConfig().Threads = %d, want 1", d.Threads)
	}
	zero := Config{}.withDefaults()
	full := d.withDefaults()
	zero.Retention = full.Retention
	zero.Machine, zero.Logger, zero.Now = nil, nil, nil
	full.Machine, full.Logger, full.Now = nil, nil, nil
	if !reflect.DeepEqual(zero, full) {
		t.Errorf("a zero Config's defaults differ from DefaultConfig:\n zero: %+v\n want: %+v", zero, full)
	}
	if c := (Config{}).withDefaults(); c.Machine == nil || c.Logger == nil || c.Now == nil {
		t.Errorf("withDefaults left Machine, Logger or Now nil: %+v", c)
	}
}
