//! The server's settings as the cluster starts it: the rendered Deployment's arguments and environment, with
//! the ConfigMap it loads, parsed by the server's own command line.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use agentfarm::settings::Settings;
use clap::{CommandFactory, FromArgMatches, Parser};
use k8s_openapi::api::core::v1::Container;

use super::objects::Object;

/// The name of the control plane's Deployment.
pub const DEPLOYMENT: &str = "agentfarm-control-plane";

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    settings: Settings,
}

/// The settings the control plane of `objects` runs with.
pub fn deployed_settings(what: &str, objects: &[Object]) -> Settings {
    let (namespace, container) =
        control_plane(objects).unwrap_or_else(|| panic!("{what}: no Deployment {DEPLOYMENT}"));
    let mut environment = BTreeMap::new();
    for source in container.env_from.iter().flatten() {
        let name = source
            .config_map_ref
            .as_ref()
            .map(|reference| reference.name.as_str())
            .unwrap_or_else(|| panic!("{what}: the control plane loads only ConfigMaps"));
        let map = objects
            .iter()
            .find_map(|object| match object {
                Object::ConfigMap(map)
                    if map.metadata.name.as_deref() == Some(name)
                        && map.metadata.namespace.as_deref() == Some(namespace) =>
                {
                    Some(map)
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{what}: ConfigMap {namespace}/{name} is not in the manifests"));
        environment.extend(map.data.clone().unwrap_or_default());
    }
    for variable in container.env.iter().flatten() {
        if let Some(value) = &variable.value {
            environment.insert(variable.name.clone(), value.clone());
        }
    }

    let args = container.args.clone().unwrap_or_default();
    settings_from(what, args, &environment)
}

/// The settings of `agentfarm` run with `args` (`serve` first) in `environment`, as its command line parses
/// them; every `AGENTFARM_*` variable must be a setting.
pub fn settings_from(what: &str, args: Vec<String>, environment: &BTreeMap<String, String>) -> Settings {
    assert_eq!(
        args.first().map(String::as_str),
        Some("serve"),
        "{what}: the server runs `agentfarm serve`"
    );
    let command = Serve::command();
    let mut argv = vec!["agentfarm".to_owned()];
    argv.extend(args.into_iter().skip(1));
    for (name, value) in environment {
        let setting = command
            .get_arguments()
            .find(|arg| arg.get_env() == Some(OsStr::new(name)));
        match setting {
            Some(arg) => {
                let long = arg.get_long().expect("every setting has a long flag");
                argv.push(format!("--{long}={value}"));
            }
            None => assert!(
                !name.starts_with("AGENTFARM_"),
                "{what}: {name} is not a setting of the server"
            ),
        }
    }
    let matches = command
        .try_get_matches_from(&argv)
        .unwrap_or_else(|err| panic!("{what}: the server would refuse its settings: {err}"));
    Serve::from_arg_matches(&matches)
        .unwrap_or_else(|err| panic!("{what}: {err}"))
        .settings
}

/// The ports the control plane's container declares (none when there is no control plane).
pub fn control_plane_ports(objects: &[Object]) -> Vec<k8s_openapi::api::core::v1::ContainerPort> {
    control_plane(objects)
        .and_then(|(_, container)| container.ports.clone())
        .unwrap_or_default()
}

/// The control plane's namespace and container.
fn control_plane(objects: &[Object]) -> Option<(&str, &Container)> {
    objects.iter().find_map(|object| match object {
        Object::Deployment(deployment) if deployment.metadata.name.as_deref() == Some(DEPLOYMENT) => {
            let namespace = deployment.metadata.namespace.as_deref()?;
            let container = deployment
                .spec
                .as_ref()?
                .template
                .spec
                .as_ref()?
                .containers
                .first()?;
            Some((namespace, container))
        }
        _ => None,
    })
}
