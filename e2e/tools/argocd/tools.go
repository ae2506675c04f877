//go:build tools

// Package tools pins github.com/argoproj/argo-cd/v3 for `go build github.com/argoproj/argo-cd/v3/cmd`.
package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
