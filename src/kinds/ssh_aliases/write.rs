//! Writing the project's SSH alias block into the user's OpenSSH config: with the
//! addresses the instances have when apply runs, through a temporary file and a rename (so
//! ssh never reads half a file), keeping the file's mode (0600 for a new file), and
//! changing nothing outside the block.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::aws::{AwsError, Cloud};
use crate::kinds::StepFailure;
use crate::ssh::config::{self as sshconfig, HostAddress, HostEntry};

fn file_error(path: &Path, source: std::io::Error) -> StepFailure {
    StepFailure::ReadFile {
        path: path.display().to_string(),
        source,
    }
}

/// The instance's address now: its Elastic IP (among the project's `elastic`), else its
/// public address while it runs; and its id.
async fn address_now(
    cloud: &Cloud,
    project: &str,
    instance: &str,
    elastic: &[crate::aws::AddressInfo],
) -> Result<(HostAddress, Option<String>), AwsError> {
    let Some(found) = cloud.find_instance(project, instance).await? else {
        return Ok((HostAddress::None, None));
    };
    let elastic = elastic
        .iter()
        .find(|a| a.instance_id.as_deref() == Some(found.id.as_str()));
    let address = match (elastic, found.public_ip) {
        (Some(address), _) => HostAddress::Known(address.public_ip.clone()),
        (None, Some(ip)) if found.state.is_up() => HostAddress::Known(ip),
        _ => HostAddress::None,
    };
    Ok((address, Some(found.id)))
}

/// Puts `block` into `file` (or takes the project's block out, with `None`), first taking
/// out the user's own entries for the aliases the spec adopts (`adopted`).
fn put_block(
    file: &Path,
    project: &str,
    block: Option<&str>,
    adopted: &[&str],
) -> Result<(), StepFailure> {
    let (text, mode) = match std::fs::read_to_string(file) {
        Ok(text) => {
            let mode = std::fs::metadata(file)
                .map_err(|e| file_error(file, e))?
                .permissions()
                .mode()
                & 0o7777;
            (text, mode)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            if block.is_none() {
                return Ok(());
            }
            (String::new(), 0o600)
        }
        Err(error) => return Err(file_error(file, error)),
    };
    // Markers first: with unbalanced ones, no line is taken for the user's own entry.
    sshconfig::check_markers(&text, project).map_err(|problem| StepFailure::ConfigMarkers {
        path: file.display().to_string(),
        problem,
    })?;
    let own = sshconfig::without_host_entries(&text, adopted);
    let updated =
        sshconfig::replace(&own, project, block).map_err(|problem| StepFailure::ConfigMarkers {
            path: file.display().to_string(),
            problem,
        })?;
    if updated == text {
        return Ok(());
    }
    crate::secrets::write_config(file, &updated, mode).map_err(|source| StepFailure::SecretFile {
        path: file.display().to_string(),
        source,
        undone: "the config file was left as it was",
    })
}

pub(super) async fn write(
    cloud: &Cloud,
    project: &str,
    file: &Path,
    hosts: &[HostEntry],
    known_hosts: Option<&str>,
) -> Result<(), StepFailure> {
    let mut addresses = std::collections::BTreeMap::new();
    let elastic = cloud.project_addresses(project, None).await?;
    for host in hosts {
        if !addresses.contains_key(&host.instance) {
            let found = address_now(cloud, project, &host.instance, &elastic).await?;
            addresses.insert(host.instance.clone(), found);
        }
    }
    let instance_id = |instance: &str| addresses.get(instance).and_then(|(_, id)| id.clone());
    let host_keys = known_hosts.map(|file| sshconfig::HostKeys {
        file,
        instance_id: &instance_id,
    });
    let block = sshconfig::render(
        project,
        hosts,
        |instance| {
            addresses
                .get(instance)
                .map_or(HostAddress::None, |(address, _)| address.clone())
        },
        host_keys.as_ref(),
    );
    let adopted: Vec<&str> = hosts
        .iter()
        .filter(|h| h.adopt)
        .map(|h| h.alias.as_str())
        .collect();
    put_block(file, project, Some(&block), &adopted)
}

pub(super) fn remove(project: &str, file: &Path) -> Result<(), StepFailure> {
    put_block(file, project, None, &[])
}
