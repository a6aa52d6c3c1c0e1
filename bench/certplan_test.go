package main

import "testing"

// checkCertplan checks the stages that run certplan's libraries.
func checkCertplan(t *testing.T, cfg config, res *Results) {
	t.Helper()
}
