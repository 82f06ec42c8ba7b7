//! The deploy kit, checked offline (no cluster runs here): every kustomization renders and parses strictly
//! into k8s-openapi types; the rendered objects meet the security policy (restricted pods, RBAC no wider
//! than `doctor` checks, agent egress never to private ranges, no Secret data); the Job the Kubernetes runtime
//! makes refers only to objects the manifests create; the hetzner-k3s config matches the tool's schema; the
//! scripts pass shellcheck and plan without a cluster; the cluster checks (tests/cluster/) explain themselves
//! without one and name what the manifests name; the node's metadata rule holds in network namespaces; the
//! single-VPS kit's units start the server sandboxed and back it up.

mod agent_job;
mod backup;
mod checkov;
mod cluster_config;
mod cluster_scripts;
mod metadata_rule;
mod objects;
mod policy;
mod render;
mod restricted;
mod sandbox_policy;
mod scripts;
mod settings;
mod vps;
