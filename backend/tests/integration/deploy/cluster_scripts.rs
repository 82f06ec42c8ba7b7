//! The cluster checks in `tests/cluster/` (CL-01 … CL-10), offline: each explains itself with no cluster
//! and no kubectl, refuses unknown arguments, and names things as the manifests and the server do; CL-03
//! judges the RBAC the manifests grant, answered by a stand-in kubectl, as passing, and a wider one as
//! failing; CL-02's user-data audit finds tokens inside hetzner-k3s's encoded `write_files`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};

use super::objects::{Object, rendering};
use super::scripts::{Sandbox, shell_scripts};
use crate::harness::repo;

/// `tests/cluster/cl-*.sh`, in order.
fn checks() -> Vec<PathBuf> {
    let mut checks: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/cluster"))
        .expect("tests/cluster")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("cl-") && name.ends_with(".sh")
        })
        .collect();
    checks.sort();
    checks
}

/// `CL-07` for `tests/cluster/cl-07-drain.sh`.
fn check_id(script: &std::path::Path) -> String {
    let name = script.file_name().unwrap_or_default().to_string_lossy();
    name[..5].to_uppercase()
}

#[test]
fn there_is_one_check_per_cluster_test_and_shellcheck_sees_them_all() {
    let ids: Vec<String> = checks().iter().map(|script| check_id(script)).collect();
    let expected: Vec<String> = (1..=10).map(|n| format!("CL-{n:02}")).collect();
    assert_eq!(ids, expected, "one script per CL test of SECURITY.md");
    let scripts = shell_scripts();
    for script in checks().into_iter().chain([
        repo().join("tests/cluster/run-all.sh"),
        repo().join("tests/cluster/lib.sh"),
    ]) {
        assert!(
            scripts.contains(&script),
            "{} is not among the scripts shellcheck checks",
            script.display()
        );
    }
}

#[test]
fn every_check_explains_itself_without_a_cluster_or_kubectl() {
    let sandbox = Sandbox::without_cluster_tools();
    let (ok, _) = sandbox.run("-c", &["command -v kubectl || command -v helm"]);
    assert!(!ok, "the sandbox's PATH has no kubectl or helm");
    for script in checks() {
        let relative = script.strip_prefix(repo()).expect("in the repository");
        let relative = relative.to_string_lossy();
        let id = check_id(&script);
        let (ok, help) = sandbox.run(&relative, &["--help"]);
        assert!(ok, "{relative} --help failed:\n{help}");
        for expected in [
            format!("Usage: {relative}"),
            format!("{id} "),
            "Pass:".to_owned(),
            "Needs:".to_owned(),
            "Changes".to_owned(),
            "Exit status:".to_owned(),
        ] {
            assert!(
                help.contains(&expected),
                "{relative} --help lacks {expected:?}:\n{help}"
            );
        }
        let (ok, refused) = sandbox.run(&relative, &["--frobnicate"]);
        assert!(
            !ok && refused.contains("unknown argument: --frobnicate"),
            "{relative} refuses an unknown argument by name:\n{refused}"
        );
    }
    let (ok, help) = sandbox.run("tests/cluster/run-all.sh", &["--help"]);
    assert!(ok && help.contains("CL-08") && help.contains("CL-10"), "{help}");
    let (ok, listed) = sandbox.run("tests/cluster/run-all.sh", &["--list"]);
    assert!(ok, "{listed}");
    assert!(
        listed.contains("cl-01-egress.sh") && !listed.contains("cl-08") && !listed.contains("cl-10"),
        "the soak and the drill only on request:\n{listed}"
    );
    let (ok, refused) = sandbox.run("tests/cluster/run-all.sh", &["--frobnicate"]);
    assert!(!ok && refused.contains("--frobnicate"), "{refused}");
}

/// The `NAME=value` lines of `tests/cluster/lib.sh` with a literal value.
fn lib_names() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(repo().join("tests/cluster/lib.sh")).expect("read lib.sh");
    text.lines()
        .filter_map(|line| line.split_once('='))
        .filter(|(name, value)| {
            !name.is_empty()
                && name.bytes().all(|byte| byte.is_ascii_uppercase() || byte == b'_')
                && !value.is_empty()
                && !value.contains(['$', '\'', '"', ' '])
        })
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

fn find<'a>(objects: &'a [Object], kind: &str, namespace: &str, name: &str) -> &'a Object {
    objects
        .iter()
        .find(|object| object.kind() == kind && object.namespace() == namespace && object.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {namespace}/{name} in the manifests"))
}

#[test]
fn the_checks_name_things_as_the_manifests_and_the_server_do() {
    use agentfarm::runtime::kube::job;

    let names = lib_names();
    let name = |key: &str| -> &str { names.get(key).unwrap_or_else(|| panic!("lib.sh sets no {key}")) };
    let objects = rendering("overlays/hetzner");
    let settings = super::settings::deployed_settings("overlays/hetzner", objects);

    let agents = name("AGENTS_NAMESPACE");
    let system = name("SYSTEM_NAMESPACE");
    find(objects, "Namespace", "", agents);
    find(objects, "Namespace", "", system);
    assert_eq!(settings.kube.namespace, agents);

    let Object::Deployment(deployment) = find(objects, "Deployment", system, name("CONTROL_PLANE")) else {
        unreachable!()
    };
    let spec = deployment.spec.as_ref().expect("spec");
    let pod = spec.template.spec.as_ref().expect("pod spec");
    assert_eq!(pod.service_account_name.as_deref(), Some(name("CONTROL_PLANE")));
    find(objects, "ServiceAccount", system, name("CONTROL_PLANE"));
    let (key, value) = name("CONTROL_PLANE_SELECTOR").split_once('=').expect("KEY=VALUE");
    assert_eq!(
        spec.selector
            .match_labels
            .as_ref()
            .and_then(|labels| labels.get(key))
            .map(String::as_str),
        Some(value),
        "CONTROL_PLANE_SELECTOR selects the control plane's pods"
    );
    let Object::Service(service) = find(objects, "Service", system, name("CONTROL_PLANE_SERVICE")) else {
        unreachable!()
    };
    assert_eq!(
        service
            .spec
            .as_ref()
            .and_then(|spec| spec.selector.as_ref())
            .and_then(|s| s.get(key))
            .map(String::as_str),
        Some(value)
    );

    // CL-10 repoints volume 0 of the Deployment: it must be the data volume on DATA_CLAIM.
    let volumes = pod.volumes.as_ref().expect("volumes");
    assert_eq!(volumes[0].name, "data");
    assert_eq!(
        volumes[0]
            .persistent_volume_claim
            .as_ref()
            .map(|claim| claim.claim_name.as_str()),
        Some(name("DATA_CLAIM"))
    );
    find(objects, "PersistentVolumeClaim", system, name("DATA_CLAIM"));
    assert!(
        volumes.iter().any(|volume| {
            volume
                .secret
                .as_ref()
                .and_then(|secret| secret.secret_name.as_deref())
                == Some(name("VAPID_SECRET"))
        }),
        "VAPID_SECRET is the Secret the control plane mounts"
    );
    find(objects, "ConfigMap", system, name("SETTINGS_CONFIGMAP"));

    assert_eq!(settings.kube.claude_token_secret, name("CLAUDE_TOKEN_SECRET"));
    assert_eq!(settings.kube.github_token_secret, name("GITHUB_TOKEN_SECRET"));
    assert_eq!(settings.kube.runtime_class, name("DEFAULT_RUNTIME_CLASS"));
    find(objects, "RuntimeClass", "", name("DEFAULT_RUNTIME_CLASS"));
    let node_selector: Vec<String> = settings
        .kube
        .node_selector
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    assert_eq!(node_selector, [name("AGENT_NODE_LABEL")]);
    let (kvm_key, kvm_value) = &settings.kube.kvm_node_label;
    assert_eq!(format!("{kvm_key}={kvm_value}"), name("KVM_NODE_LABEL"));

    assert_eq!(job::CONTAINER, name("AGENT_CONTAINER"));
    assert_eq!(job::RUN_LABEL, name("RUN_LABEL"));
    assert_eq!(job::ARCHIVE_FINALIZER, name("ARCHIVE_FINALIZER"));
    assert_eq!(job::managed_selector(), name("MANAGED_SELECTOR"));

    let shared = rendering("base + components/shared-claude-home");
    find(shared, "Namespace", "", name("NFS_NAMESPACE"));
    let Object::Service(nfs) = find(shared, "Service", name("NFS_NAMESPACE"), name("NFS_SERVICE")) else {
        unreachable!()
    };
    assert_eq!(
        nfs.spec
            .as_ref()
            .and_then(|spec| spec.selector.as_ref())
            .and_then(|selector| selector.get("app.kubernetes.io/name"))
            .map(String::as_str),
        Some(name("NFS_SERVICE")),
        "CL-01 finds the NFS server's pods by app.kubernetes.io/name=NFS_SERVICE"
    );

    let probe = std::fs::read_to_string(repo().join("infra/probe-netpol.sh")).expect("probe-netpol.sh");
    assert!(probe.contains(&format!("PROBE_IMAGE={}\n", name("CURL_IMAGE"))));
    let runbook = std::fs::read_to_string(repo().join("infra/README.md")).expect("infra/README.md");
    assert!(runbook.contains(&format!("image: {}", name("BUSYBOX_IMAGE"))));
}

/// A kubectl for CL-03 that answers `auth can-i` from `allowed` (one command line a line), refuses the
/// privileged dry run as Pod Security does (unless `psa-off` exists), runs the token probe as a pod that
/// reports no token, and records every call and the pod it was asked to create.
const RBAC_KUBECTL: &str = r#"#!/bin/sh
dir='@DIR@'
printf '%s\n' "kubectl $*" >>"$dir/calls.log"
case "$*" in
  "get nodes -o name"*) echo node/agentfarm-master1 ;;
  "auth can-i "*)
    if grep -qxF -- "$*" "$dir/allowed"; then echo yes; else echo no; exit 1; fi
    ;;
  *"apply --dry-run=server -f -"*)
    cat >/dev/null
    if [ -e "$dir/psa-off" ]; then echo "pod/agentfarm-cl-03-privileged created (server dry run)"; exit 0; fi
    echo 'Error from server (Forbidden): error when creating "STDIN": pods "agentfarm-cl-03-privileged" is forbidden: violates PodSecurity "restricted:latest": privileged' >&2
    exit 1
    ;;
  *"apply -f -"*) cat >"$dir/applied.yaml" && echo "pod/agentfarm-cl-03-token created" ;;
  *"get pod agentfarm-cl-03-token"*) echo Succeeded ;;
  *"logs agentfarm-cl-03-token"*) echo "TOKEN absent" ;;
  *"get pods -l app.kubernetes.io/managed-by=agentfarm"*) echo "agent-01jz0000000000000000000000: workspace home tmp" ;;
  *delete*) ;;
  *) echo "unexpected: kubectl $*" >&2; exit 3 ;;
esac
"#;

/// The `kubectl auth can-i` command lines CL-03 asks that the manifests' RBAC answers yes to: every verb,
/// resource and name of each Role and ClusterRole bound to a ServiceAccount.
fn granted_can_i_lines(objects: &[Object]) -> Vec<String> {
    let rules = |kind: &str, namespace: &str, role: &str| -> Vec<PolicyRule> {
        match find(objects, kind, namespace, role) {
            Object::Role(role) => role.rules.clone().unwrap_or_default(),
            Object::ClusterRole(role) => role.rules.clone().unwrap_or_default(),
            _ => unreachable!(),
        }
    };
    let user = |subject: &Subject| {
        format!(
            "system:serviceaccount:{}:{}",
            subject.namespace.as_deref().unwrap_or_default(),
            subject.name
        )
    };
    let mut grants = Vec::new();
    for object in objects {
        let (namespace, role_rules, subjects) = match object {
            Object::RoleBinding(binding) => (
                Some(object.namespace().to_owned()),
                rules("Role", object.namespace(), &binding.role_ref.name),
                binding.subjects.clone().unwrap_or_default(),
            ),
            Object::ClusterRoleBinding(binding) => (
                None,
                rules("ClusterRole", "", &binding.role_ref.name),
                binding.subjects.clone().unwrap_or_default(),
            ),
            _ => continue,
        };
        for subject in subjects.iter().filter(|subject| subject.kind == "ServiceAccount") {
            for rule in &role_rules {
                for group in rule.api_groups.iter().flatten() {
                    for resource in rule.resources.iter().flatten() {
                        let (resource, subresource) = match resource.split_once('/') {
                            Some((resource, subresource)) => (resource, Some(subresource)),
                            None => (resource.as_str(), None),
                        };
                        let resource = if group.is_empty() {
                            resource.to_owned()
                        } else {
                            format!("{resource}.{group}")
                        };
                        let names: Vec<Option<&String>> = match &rule.resource_names {
                            Some(names) => names.iter().map(Some).collect(),
                            None => vec![None],
                        };
                        for verb in &rule.verbs {
                            for name in &names {
                                let mut line = format!("auth can-i {verb} {resource}");
                                if let Some(name) = name {
                                    line.push_str(&format!("/{name}"));
                                }
                                if let Some(subresource) = subresource {
                                    line.push_str(&format!(" --subresource={subresource}"));
                                }
                                if let Some(namespace) = &namespace {
                                    line.push_str(&format!(" --namespace {namespace}"));
                                }
                                line.push_str(&format!(" --as={}", user(subject)));
                                grants.push(line);
                            }
                        }
                    }
                }
            }
        }
    }
    grants
}

/// Runs CL-03 against RBAC_KUBECTL granting `allowed`; returns (success, output, the sandbox).
fn run_cl_03(allowed: &[String], psa_off: bool) -> (bool, String, Sandbox) {
    let sandbox = Sandbox::new();
    let dir = sandbox.dir.path();
    std::fs::write(
        dir.join("kubectl"),
        RBAC_KUBECTL.replace("@DIR@", &dir.display().to_string()),
    )
    .expect("write kubectl");
    std::fs::write(dir.join("allowed"), allowed.join("\n") + "\n").expect("write allowed");
    if psa_off {
        std::fs::write(dir.join("psa-off"), "").expect("write psa-off");
    }
    let (ok, output) = sandbox.run("tests/cluster/cl-03-rbac.sh", &[]);
    (ok, output, sandbox)
}

#[test]
fn cl_03_passes_the_manifests_rbac_and_fails_a_wider_one() {
    let granted = granted_can_i_lines(rendering("overlays/hetzner"));
    assert!(granted.len() >= 15, "the control plane's grants: {granted:#?}");

    let (ok, output, sandbox) = run_cl_03(&granted, false);
    assert!(ok, "CL-03 against the manifests' RBAC:\n{output}");
    assert!(!output.contains("FAIL "), "{output}");
    for expected in [
        "PASS CL-03 a pod in agentfarm-agents gets no ServiceAccount token by default",
        "PASS CL-03 running agents have no ServiceAccount token",
        "PASS CL-03 the control plane may create jobs.batch in agentfarm-agents",
        "PASS CL-03 the control plane may get secrets claude-token in agentfarm-system",
        "PASS CL-03 the control plane may create secrets in agentfarm-agents",
        "PASS CL-03 the control plane may not get secrets in agentfarm-agents",
        "PASS CL-03 the control plane may not list secrets in agentfarm-agents",
        "PASS CL-03 the control plane may not create pods/exec in agentfarm-agents",
        "PASS CL-03 the agents' ServiceAccount may not get pods/log in agentfarm-agents",
        "PASS CL-03 a privileged pod is refused in agentfarm-agents by Pod Security restricted",
        "PASS CL-03 a privileged pod is refused in agentfarm-system by Pod Security restricted",
    ] {
        assert!(output.contains(expected), "missing {expected:?}:\n{output}");
    }
    assert!(output.trim_end().ends_with("0 failed, 0 skipped"), "{output}");
    let yes_asked = sandbox
        .calls()
        .lines()
        .filter(|call| call.contains("auth can-i") && call.contains("agentfarm-control-plane"))
        .filter(|call| granted.iter().any(|grant| call.ends_with(grant.as_str())))
        .count();
    assert_eq!(
        yes_asked,
        granted.len(),
        "CL-03 asks about every grant:\n{}",
        sandbox.calls()
    );
    assert!(
        sandbox
            .calls()
            .contains("delete pods --all-namespaces -l agentfarm.dev/cluster-check=cl-03"),
        "it cleans up its labelled pods:\n{}",
        sandbox.calls()
    );

    // The probe pod it created: labelled, and allowed by Pod Security `restricted`.
    let applied =
        std::fs::read_to_string(sandbox.dir.path().join("applied.yaml")).expect("the pod it applied");
    let documents = super::render::yaml_documents(&applied);
    let pod = super::objects::parse(&documents[0]).expect("a Pod");
    assert_eq!(pod.namespace(), "agentfarm-agents");
    assert_eq!(
        pod.metadata()
            .labels
            .as_ref()
            .and_then(|labels| labels.get("agentfarm.dev/cluster-check"))
            .map(String::as_str),
        Some("cl-03")
    );
    let violations = super::restricted::violations(pod.pod_spec().expect("pod spec"));
    assert!(violations.is_empty(), "{violations:?}");

    let mut wider = granted;
    wider.push(
        "auth can-i list secrets --namespace agentfarm-agents \
         --as=system:serviceaccount:agentfarm-system:agentfarm-control-plane"
            .to_owned(),
    );
    let (ok, output, _) = run_cl_03(&wider, true);
    assert!(!ok, "a wider RBAC and no Pod Security fail CL-03:\n{output}");
    for expected in [
        "FAIL CL-03 the control plane may not list secrets in agentfarm-agents: kubectl auth can-i says yes",
        "FAIL CL-03 a privileged pod is refused in agentfarm-agents: the API server accepted it (dry run)",
    ] {
        assert!(output.contains(expected), "missing {expected:?}:\n{output}");
    }
}

/// User-data shaped like hetzner-k3s's: cloud-init with `write_files` entries as gzip+base64 (the block
/// form, 76 columns), one of them holding `text`.
fn cloud_init_with_file(text: &str) -> String {
    let mut gzip = Command::new("sh")
        .args(["-c", "gzip -c | base64 -w 76"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run gzip and base64");
    std::io::Write::write_all(&mut gzip.stdin.take().expect("stdin"), text.as_bytes()).expect("write");
    let encoded = gzip.wait_with_output().expect("gzip output");
    let encoded = String::from_utf8(encoded.stdout).expect("base64 is text");
    let block: String = encoded.lines().map(|line| format!("\n    {line}")).collect();
    format!(
        "#cloud-config\npreserve_hostname: true\n\nwrite_files:\n- content: |{block}\n  path: /etc/init-0.sh\n  \
         encoding: gzip+base64\n  permissions: '0755'\n\npackages: ['fail2ban', 'wireguard']\n\nruncmd:\n- \
         /etc/init-0.sh\n"
    )
}

/// Runs CL-02's in-pod audit on `user_data` (the metadata service is a stand-in `curl`); returns its
/// verdict line.
fn audit_user_data(user_data: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let fixture = dir.path().join("user-data");
    std::fs::write(&fixture, user_data).expect("write user-data");
    let curl = dir.path().join("curl");
    std::fs::write(&curl, format!("#!/bin/sh\ncat '{}'\n", fixture.display())).expect("write curl");
    let mut permissions = std::fs::metadata(&curl).expect("curl").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&curl, permissions).expect("chmod curl");
    let output = Command::new("sh")
        .arg(repo().join("tests/cluster/userdata-audit.sh"))
        .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
        .output()
        .expect("run the audit");
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "the audit failed:\n{printed}");
    printed
        .lines()
        .find(|line| line.starts_with("USERDATA "))
        .unwrap_or_else(|| panic!("no verdict:\n{printed}"))
        .to_owned()
}

/// CL-02 used to grep the raw user-data, where hetzner-k3s's burst-pool join script (with the k3s server
/// token) sits gzip+base64-encoded: it passed with the token there. Now it decodes write_files first, and
/// names token shapes whatever variable holds them; a value never reaches the verdict.
#[test]
fn cl_02_finds_tokens_inside_encoded_user_data() {
    let server_token =
        "K10a3f1c0e9d2b4c6a8e0f1d2c3b4a5968778695a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0::server:3f9c2a7d";
    let join_script = format!(
        "#!/bin/bash\nset -e\ncurl -sfL https://get.k3s.io | K3S_TOKEN=\"{server_token}\" \
         INSTALL_K3S_VERSION=\"v1.35.5+k3s1\" sh -s - agent --server https://10.0.0.2:6443\n"
    );
    let verdict = audit_user_data(&cloud_init_with_file(&join_script));
    assert!(verdict.contains("files=1"), "{verdict}");
    assert!(
        verdict.contains("server_token=yes"),
        "the encoded join script's token: {verdict}"
    );
    assert!(verdict.contains("shaped=k3s"), "{verdict}");
    assert!(!verdict.contains("3f9c2a7d"), "never a value: {verdict}");

    let hcloud = "Zq8Jm2Kx4Lp7Nw9Rt3Vy6Bc1Df5Gh0Jk2Mn4Pq6St8Uw0Xz3Ab5Cd7Ef9Gh1Ij3Kl5M";
    let firewall = format!("#!/bin/bash\nreadonly HETZNER_TOKEN=\"{hcloud}\"\n");
    let verdict = audit_user_data(&cloud_init_with_file(&firewall));
    assert!(verdict.contains("hcloud=yes"), "{verdict}");
    assert!(verdict.contains("shaped=hcloud"), "{verdict}");

    let stray = "export SOMETHING=\"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv\"\n";
    let verdict = audit_user_data(&cloud_init_with_file(stray));
    assert!(
        verdict.contains("shaped=github"),
        "a token under any name: {verdict}"
    );

    let clean = "#!/bin/sh\necho 'nameserver 8.8.8.8' > /etc/k8s-resolv.conf\n\
                 echo 8b2f0a1c9e7d6b5a4c3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c > /etc/sum\n";
    let verdict = audit_user_data(&cloud_init_with_file(clean));
    for expected in [
        "files=1",
        "hcloud=no",
        "server_token=no",
        "other_token=no",
        "shaped=none",
    ] {
        assert!(
            verdict.contains(expected),
            "clean user-data, {expected}: {verdict}"
        );
    }

    // Before decoding, the same user-data looked clean.
    let raw = cloud_init_with_file(&join_script);
    assert!(
        !raw.contains("::server:"),
        "the fixture hides the token as hetzner-k3s does"
    );
}
