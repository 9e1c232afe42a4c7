//! The ssh connections of one run: a private directory (0700) for the `ControlMaster`
//! sockets that every call to one instance shares, the instances the preflight reached
//! (with their verified keys), and why the others could not be reached.

use std::path::Path;

use super::reach::Reached;

/// The run's ssh connections: a private directory (0700) for the masters that calls to
/// one instance share, and the instances the preflight reached.
pub struct Connections {
    control_dir: tempfile::TempDir,
    reached: std::sync::Mutex<std::collections::BTreeMap<String, Reached>>,
    /// Why an instance could not be reached, for its share's failure.
    unreachable: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Connections {
    pub fn new() -> std::io::Result<Connections> {
        Ok(Connections {
            control_dir: crate::secrets::private_temp_dir("tether-ssh-")?,
            reached: std::sync::Mutex::default(),
            unreachable: std::sync::Mutex::default(),
        })
    }

    /// Notes why `instance` could not be reached.
    pub fn unreachable(&self, instance: &str, why: &dyn std::fmt::Display) {
        self.unreachable
            .lock()
            .expect("connections lock")
            .insert(instance.to_string(), why.to_string());
    }

    /// Why `instance` could not be reached, if it could not.
    pub fn why_unreachable(&self, instance: &str) -> Option<String> {
        self.unreachable
            .lock()
            .expect("connections lock")
            .get(instance)
            .cloned()
    }

    /// The reached `instance`, if the preflight reached it.
    pub fn reached(&self, instance: &str) -> Option<Reached> {
        self.reached
            .lock()
            .expect("connections lock")
            .get(instance)
            .cloned()
    }

    /// Keeps a reached instance among the run's connections.
    pub fn insert(&self, reached: Reached) {
        self.reached
            .lock()
            .expect("connections lock")
            .insert(reached.instance.clone(), reached);
    }

    /// The ssh options of every call to `reached`: its verified key, and its shared master.
    pub fn options(&self, reached: &Reached, known_hosts: &Path) -> Vec<String> {
        super::reach::ssh_options(reached, known_hosts, self.control_dir.path())
    }

    /// Closes every shared connection of the run: each reached instance's master, through
    /// its alias (`alias_of`) in `config_file`.
    pub async fn close(
        &self,
        config_file: &Path,
        known_hosts: &Path,
        alias_of: impl Fn(&str) -> Option<String>,
    ) {
        let reached: Vec<Reached> = self
            .reached
            .lock()
            .expect("connections lock")
            .values()
            .cloned()
            .collect();
        for reached in reached {
            if let Some(alias) = alias_of(&reached.instance) {
                let options = self.options(&reached, known_hosts);
                super::reach::close(config_file, &alias, &options).await;
            }
        }
    }
}
