//go:build tools

// Package tools pins Helm as a dependency so `go build helm.sh/helm/v3/cmd/helm` builds it.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
