//go:build tools

// Package tools records the KEDA commands e2e/cluster builds, so `go mod tidy` keeps their dependencies.
package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
)
