// Command kubernetes is one multi-call binary holding the upstream Kubernetes
// components that the agentfarm tests run as a one-node cluster: the first
// argument (or the name it is invoked under, through a symlink) picks the
// component, as k3s does.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	_ "time/tzdata" // CronJob time zones, as upstream's binaries embed them

	"github.com/spf13/cobra"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl's client auth plugins
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // --logging-format=json
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

// components maps each subcommand to the upstream command it runs.
var components = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kube-proxy":              proxy.NewProxyCommand,
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
}

func main() {
	name := filepath.Base(os.Args[0])
	if _, known := components[name]; !known && name != "kubectl" && name != "etcd" {
		if len(os.Args) < 2 {
			usage()
		}
		name = os.Args[1]
		// The upstream commands read os.Args themselves (cobra, kubectl's
		// plugin lookup and kuberc): make it look as if they were invoked alone.
		os.Args = append([]string{name}, os.Args[2:]...)
	}
	switch name {
	case "etcd":
		os.Exit(runEtcd(os.Args[1:]))
	case "kubectl":
		runKubectl()
	default:
		newCommand, ok := components[name]
		if !ok {
			usage()
		}
		os.Exit(cli.Run(newCommand()))
	}
}

// runKubectl is upstream's cmd/kubectl main.
func runKubectl() {
	logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) //nolint:errcheck
	if err := cli.RunNoErrOutput(kubectl.NewDefaultKubectlCommand()); err != nil {
		kubectlutil.CheckErr(err)
	}
}

func usage() {
	names := []string{"etcd", "kubectl"}
	for name := range components {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Fprintf(os.Stderr, "usage: %s COMPONENT [FLAGS...]\ncomponents: %v\n", filepath.Base(os.Args[0]), names)
	os.Exit(2)
}
