//go:build !unix

package avro

import "testing"

type cpuMeter struct{}

func startCPU(b *testing.B) *cpuMeter { return &cpuMeter{} }

func (m *cpuMeter) report(b *testing.B) {}
