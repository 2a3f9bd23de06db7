// The pod sandbox ("pause") program of the local cluster's nodes: no registry is reachable, so
// the sandbox image is built here from this module.
module github.com/recluster/recluster/tools/pause

go 1.24.0
