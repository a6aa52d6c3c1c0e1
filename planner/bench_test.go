package planner

import (
	"fmt"
	"testing"
)

// BenchmarkPlan plans 100,000 and 1,000,000 names on 4 IPs (limit 100),
// from scratch and against the previous plan.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{100000, 1000000} {
		inv := genInventory(1, n, fourIPs)
		b.Run(fmt.Sprintf("names=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Plan(inv, nil, Policy{}, nil, now); err != nil {
					b.Fatal(err)
				}
			}
		})
		prev := mustPlan(b, inv, nil, Policy{}, nil)
		b.Run(fmt.Sprintf("names=%d/previous", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Plan(inv, nil, Policy{}, prev, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
