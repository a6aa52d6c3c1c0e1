//go:build !unix

package planner

import "time"

// cpuTime is not measured here: the cpu-ratio metrics read 0.
func cpuTime() time.Duration { return 0 }
