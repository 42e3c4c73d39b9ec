package processor

// CheckTopics checks the topic layout without changing anything.
var CheckTopics = checkTopics

// Stalled returns the owned input partitions whose last batches all failed.
func (p *Processor) Stalled() []int32 { return p.stalled() }
